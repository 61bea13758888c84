// Package streams holds what the stream edge (edge/stream) and the stream
// processing workers (workers/streamproc) share: the stream spec a create
// request declares and its defaults (Spec.Normalize), chunk validation by
// type (Spec.CheckChunk: PNG and JPEG signatures, raw frame size, whole
// PCM frames, the WAV header, Ogg pages, parameters as a JSON object), the
// stream records in KV bucket streams (Store, with compare-and-set on the
// revision so a record moves only forward: open, closing, gone), an
// in-memory Replica of the records kept by a KV watch, and the stream
// metrics (Metrics).
//
// Errors are sentinels matched with errors.Is: ErrSpec (400), ErrChunk
// (400), ErrMedia (415), ErrNotFound (404), ErrExists, ErrConflict.
//
// Spec and Record values are plain data; CheckChunk and Normalize hold no
// state and are safe for concurrent use. Store and Replica are safe for
// concurrent use; a Replica's event callback runs on its Run goroutine.
package streams
