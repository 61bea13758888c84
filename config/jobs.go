package config

// JobResultLimit is the largest answer body a job runner stores:
// lb.job_max_result_bytes, at most server.max_body_bytes (the answer
// crosses NATS in one message, and NATS max_payload is sized from
// server.max_body_bytes). 0 in lb.job_max_result_bytes means
// server.max_body_bytes.
func (c *Config) JobResultLimit() int64 {
	if c.LB.JobMaxResultBytes > 0 && c.LB.JobMaxResultBytes < c.Server.MaxBodyBytes {
		return c.LB.JobMaxResultBytes
	}
	return c.Server.MaxBodyBytes
}
