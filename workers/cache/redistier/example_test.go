package redistier_test

import (
	"fmt"
	"time"

	"github.com/switchyard/switchyard/workers/cache/redistier"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// How a value is stored in Redis: a small envelope around the raw bytes.
func ExampleEncode() {
	b := redistier.Encode(tier.Entry{Value: []byte("hi"), ContentType: "text/plain"}, time.Time{})
	fmt.Printf("%d bytes: version %d, content type %q, value %q\n", len(b), b[0], b[10:20], b[20:])
	// Output: 22 bytes: version 1, content type "text/plain", value "hi"
}
