package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// Read-your-writes. A KV get is a direct get: in a cluster any replica of
// the bucket may answer it, and one that has not yet applied a write
// answers with the value before it (or none). Writes are compare-and-sets
// decided by the leader, so a stale read never wins a write, but a record
// read as missing would drop a job that got a 202. So Get confirms every
// "not found" with a read from the stream leader (GetLatest), which has
// every acknowledged write.

// GetLatest reads a record from the bucket's stream leader; ErrNotFound
// when there is none. Use it after a lost compare-and-set, and whenever a
// stale answer would be acted upon.
func (s *Store) GetLatest(ctx context.Context, id string) (*Record, error) {
	raw, err := s.leaderGet(ctx, id)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(raw.Data, &r); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", id, err)
	}
	r.Revision, r.stored = raw.Sequence, r.Status
	return &r, nil
}

type leaderMsg struct {
	Sequence uint64
	Data     []byte
}

// leaderGet is STREAM.MSG.GET of the key's last message, which only the
// stream leader answers (unlike DIRECT.GET).
func (s *Store) leaderGet(ctx context.Context, id string) (*leaderMsg, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subjects.KVKey(subjects.BucketJobs, id)})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	m, err := s.nc.RequestWithContext(ctx, subjects.JSStreamMsgGet(subjects.KVStream(subjects.BucketJobs)), req)
	if err != nil {
		return nil, fmt.Errorf("get job %s from the leader: %w", id, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *natsjs.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("get job %s from the leader: %w", id, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == natsjs.JSErrCodeMessageNotFound {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("get job %s from the leader: %w", id, resp.Error)
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("get job %s from the leader: empty answer", id)
	}
	if len(resp.Message.Hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Hdrs)
		if err == nil {
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				return nil, ErrNotFound
			}
		}
	}
	return &leaderMsg{Sequence: resp.Message.Seq, Data: resp.Message.Data}, nil
}

// isNotFound reports whether err is a KV miss.
func isNotFound(err error) bool { return errors.Is(err, natsjs.ErrKeyNotFound) }
