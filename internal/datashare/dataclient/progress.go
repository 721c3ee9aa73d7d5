package dataclient

import (
	"io"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bar is a Progress drawn with mpb: bytes done of total, percentage, rate
// (moving average) and ETA.
type Bar struct {
	out   io.Writer
	name  string
	p     *mpb.Progress
	bar   *mpb.Bar
	last  time.Time
	total int64
}

// NewBar returns a progress bar written to out (a terminal, normally
// standard error) under name.
func NewBar(out io.Writer, name string) *Bar { return &Bar{out: out, name: name} }

// Start implements Progress.
func (b *Bar) Start(total, done int64) {
	// Auto refresh even when out is not a terminal: a Bar is made only
	// when the caller wants it drawn (--progress always).
	b.p = mpb.New(mpb.WithOutput(b.out), mpb.WithWidth(40), mpb.WithRefreshRate(150*time.Millisecond), mpb.WithAutoRefresh())
	b.total = total
	b.bar = b.p.AddBar(total,
		mpb.PrependDecorators(
			decor.Name(b.name, decor.WC{C: decor.DindentRight | decor.DextraSpace}),
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f"),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WC{W: 5}),
			decor.Name(" "),
			decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30),
			decor.Name(" ETA "),
			decor.EwmaETA(decor.ET_STYLE_GO, 30),
		),
	)
	b.bar.SetCurrent(done)
	b.last = time.Now()
}

// Add implements Progress.
func (b *Bar) Add(n int) {
	now := time.Now()
	b.bar.EwmaIncrBy(n, now.Sub(b.last))
	b.last = now
}

// Finish implements Progress.
func (b *Bar) Finish() {
	if b.bar == nil {
		return
	}
	if !b.bar.Completed() {
		b.bar.Abort(false)
	}
	b.p.Wait()
}
