package streams_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/internal/streams"
)

func ExampleSpec_CheckChunk() {
	s := streams.Spec{Type: streams.Vision, Format: streams.FormatRaw, Width: 4, Height: 2, Channels: 3}
	if err := s.Normalize(streams.Limits{DefaultMaxAge: time.Hour, DefaultMaxBytes: 1 << 20}); err != nil {
		panic(err)
	}
	fmt.Println(s.CheckChunk("application/octet-stream", make([]byte, 24)))
	err := s.CheckChunk("", make([]byte, 23))
	fmt.Println(errors.Is(err, streams.ErrChunk), err)
	err = s.CheckChunk("image/png", make([]byte, 24))
	fmt.Println(errors.Is(err, streams.ErrMedia))
	// Output:
	// <nil>
	// true invalid chunk: raw frame is 23 bytes, want width*height*channels = 24
	// true
}
