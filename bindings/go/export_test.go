package wazerohost

// GuestMemory returns the size of e's linear memory, for the tests.
func GuestMemory(e *Engine) uint32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mem.Size()
}
