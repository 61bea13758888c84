package cache

// Joined returns how many Get calls registered with a shared-tier read.
func Joined(c *Coordinator) int64 { return c.joined.Load() }
