package stanza

import "bytes"

// AppendCharData appends the character data directly inside elem, the raw
// bytes of one element that the Parser accepted (a Node's span): its text
// and CDATA sections in order, references decoded and line ends normalised
// as XML 1.0 §2.11 says a reader must. Text inside child elements is not
// included. On bytes the Parser did not accept the result is unspecified
// but stays within elem.
func AppendCharData(dst, elem []byte) []byte {
	i := startTagEnd(elem, 0)
	if i <= 0 || elem[i-1] == '/' {
		return dst // <x/>: no content
	}
	depth := 0
	for i++; i < len(elem); {
		c := elem[i]
		switch {
		case c == '<' && bytes.HasPrefix(elem[i:], []byte("<![CDATA[")):
			end := bytes.Index(elem[i+9:], []byte("]]>"))
			if end < 0 {
				return dst
			}
			if depth == 0 {
				dst = appendNormalisedEOL(dst, elem[i+9:i+9+end])
			}
			i += 9 + end + 3
		case c == '<' && i+1 < len(elem) && elem[i+1] == '/':
			if depth == 0 {
				return dst // elem's own end tag
			}
			depth--
			i = bytes.IndexByte(elem[i:], '>') + i + 1
		case c == '<':
			end := startTagEnd(elem, i)
			if end < 0 {
				return dst
			}
			if elem[end-1] != '/' {
				depth++
			}
			i = end + 1
		default:
			j := bytes.IndexByte(elem[i:], '<')
			if j < 0 {
				j = len(elem) - i
			}
			if text := elem[i : i+j]; depth == 0 && bytes.IndexByte(text, '\r') < 0 {
				dst = appendDecoded(dst, text)
			} else if depth == 0 {
				// Normalise before decoding: a &#13; is a CR that stays.
				dst = appendDecoded(dst, appendNormalisedEOL(nil, text))
			}
			i += j
		}
	}
	return dst
}

// startTagEnd returns the index of the '>' that ends the start tag opening
// at b[i], skipping quoted attribute values; -1 when there is none.
func startTagEnd(b []byte, i int) int {
	var quote byte
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// appendNormalisedEOL appends s with each CR LF pair and each lone CR
// turned into LF.
func appendNormalisedEOL(dst, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '\r')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, '\n')
		s = s[i+1:]
		if len(s) > 0 && s[0] == '\n' {
			s = s[1:]
		}
	}
}
