// Package ids makes the platform's resource ids: a short type prefix and a
// ULID-style body (48-bit millisecond time + 80 random bits, Crockford
// base32), e.g. pay_01jd3k7m9q6x4t2w8y5z0abcde. Ids sort by creation time,
// so lists and cursors can order by id.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford, lower case

var (
	mu       sync.Mutex
	lastMs   uint64
	lastRand [10]byte
)

// New returns a fresh id with the given prefix ("pay" gives "pay_…").
// Within one process ids are strictly increasing, even within a millisecond.
func New(prefix string) string {
	mu.Lock()
	ms := uint64(time.Now().UnixMilli())
	if ms <= lastMs {
		ms = lastMs
		increment(&lastRand)
	} else {
		lastMs = ms
		rand.Read(lastRand[:])
		lastRand[0] &= 0x7f // room to increment without overflow
	}
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], ms<<16)
	copy(raw[6:], lastRand[:])
	mu.Unlock()
	return prefix + "_" + encode(raw)
}

func increment(b *[10]byte) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return
		}
	}
}

// encode writes 128 bits as 26 base32 characters, most significant first.
func encode(raw [16]byte) string {
	hi := binary.BigEndian.Uint64(raw[:8])
	lo := binary.BigEndian.Uint64(raw[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = alphabet[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// Valid reports whether s looks like an id with the given prefix. It checks
// form only; whether the resource exists is the store's business.
func Valid(s, prefix string) bool {
	body, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(body) != 26 {
		return false
	}
	for i := 0; i < len(body); i++ {
		if strings.IndexByte(alphabet, body[i]) < 0 {
			return false
		}
	}
	return true
}
