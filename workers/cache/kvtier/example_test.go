package kvtier_test

import (
	"fmt"

	"github.com/switchyard/switchyard/workers/cache/kvtier"
)

// Keys of A-Z a-z 0-9 _ - / are stored as they are; others in base64url.
func ExampleEncodeKey() {
	fmt.Println(kvtier.EncodeKey("sessions", "user-42"))
	fmt.Println(kvtier.EncodeKey("sessions", "user:42"))
	// Output:
	// sessions.user-42
	// sessions.=dXNlcjo0Mg
}
