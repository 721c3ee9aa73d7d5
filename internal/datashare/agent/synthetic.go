package agent

import (
	"context"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/causewayhq/causeway/internal/datashare"
)

// SyntheticRowBytes is about the size of one synthetic CSV row, for
// sizing a dataset in bytes.
const SyntheticRowBytes = 62

var (
	syntheticDates = func() [][]byte {
		d := make([][]byte, 365)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range d {
			d[i] = []byte(start.AddDate(0, 0, i).Format(time.DateOnly))
		}
		return d
	}()
	syntheticCategories = [][]byte{[]byte("groceries"), []byte("salary"), []byte("rent"), []byte("utilities"),
		[]byte("card_payment"), []byte("transfer"), []byte("savings_transfer"), []byte("other")}
	credit, debit, eur = []byte("credit"), []byte("debit"), []byte("EUR")
)

// Synthetic writes rows rows of synthetic transactions in format, the same
// for the same seed. It is the benchmark's and the tests' dataset: fast to
// make, so encryption and transport are what a measurement sees.
func Synthetic(ctx context.Context, w io.Writer, format string, rows, seed int64) error {
	rw, err := newRowWriter(ctx, w, format, datashare.Generators[datashare.GenSynthetic].Columns)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	buf := make([]byte, 0, 64)
	fields := make([][]byte, 7)
	var key [8]byte
	for i := int64(1); i <= rows; i++ {
		buf = buf[:0]
		buf = strconv.AppendInt(buf, i, 10)
		n := len(buf)
		r := rng.Uint64()
		for b := range key {
			key[b] = byte(r >> (8 * b))
		}
		buf = hex.AppendEncode(buf, key[:4])
		buf = hex.AppendEncode(buf, key[4:])
		h := len(buf)
		cents := int64(r%100_000) + 1
		buf = strconv.AppendInt(buf, cents/100, 10)
		buf = append(buf, '.', byte('0'+cents%100/10), byte('0'+cents%10))
		fields[0] = buf[:n]
		fields[1] = buf[n:h]
		fields[2] = syntheticDates[(r>>20)%365]
		fields[3] = buf[h:]
		fields[4] = eur
		if r>>40&3 == 0 {
			fields[5] = credit
		} else {
			fields[5] = debit
		}
		fields[6] = syntheticCategories[(r>>44)%uint64(len(syntheticCategories))]
		if err := rw.row(fields); err != nil {
			return err
		}
	}
	return rw.flush()
}
