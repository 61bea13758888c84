// Package subjects owns every name of Switchyard's public NATS contract:
// subjects, queue groups, JetStream streams, consumers and key-value
// buckets, and the headers of the HTTP-over-NATS encoding.
//
// Nothing else in Switchyard formats a subject: edges and workers call the
// builders here, which validate their input and return ErrInvalid (wrapped)
// for anything that would not be a valid, unambiguous subject. The package
// has no dependencies and holds no state; every function is safe for
// concurrent use.
//
// subjects/README.md documents each name for Node, Rust and nats CLI users;
// TestReadmeMatchesCatalog keeps it and Catalog in step.
package subjects
