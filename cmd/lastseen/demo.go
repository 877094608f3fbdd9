package main

import "io"

func demo(w io.Writer) error { return nil }
