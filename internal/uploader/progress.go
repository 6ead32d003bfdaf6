package uploader

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	redrawInterval = 100 * time.Millisecond // terminal: no faster, it only flickers
	plainInterval  = 5 * time.Second        // log: a line at least this often, or per 10%
)

// progress renders the progress of one file. On a terminal it redraws one line with
// \r; elsewhere (a log, a pipe) it writes a plain line per 10% or per plainInterval.
// A nil *progress renders nothing. Its methods are safe for concurrent use.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	name     string
	total    int64
	done     int64 // bytes the server holds, including resumed ones
	resumed  int64 // bytes already on the server at the start; not part of the rate
	now      func() time.Time
	start    time.Time
	lastDraw time.Time
	lastStep int64 // plain: the last tenth reported
	lastLen  int   // terminal: width of the last line, to blank what a shorter one leaves
}

// newProgress starts rendering; it returns nil when w is nil.
func newProgress(w io.Writer, terminal bool, name string, total, resumed int64, now func() time.Time) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w, terminal: terminal, name: name, total: total, done: resumed, resumed: resumed, now: now}
	p.start = now()
	p.lastDraw = p.start
	if terminal {
		p.draw(p.start)
		return p
	}
	p.lastStep = p.step()
	if resumed > 0 {
		fmt.Fprintf(w, "%s: resuming, %s of %s left to send\n", name, humanBytes(total-resumed), humanBytes(total))
	} else {
		fmt.Fprintf(w, "%s: sending %s\n", name, humanBytes(total))
	}
	return p
}

// add records n more bytes stored by the server.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	t := p.now()
	since := t.Sub(p.lastDraw)
	if p.terminal {
		if since >= redrawInterval || p.done == p.total {
			p.draw(t)
		}
		return
	}
	// The final line is finish's; a 100% line just before it would say nothing new.
	if p.done < p.total && (p.step() > p.lastStep || since >= plainInterval) {
		fmt.Fprintf(p.w, "%s: %s / %s (%d%%), %s, ETA %s\n",
			p.name, humanBytes(p.done), humanBytes(p.total), p.percent(), p.rate(t), p.eta(t))
		p.lastStep = p.step()
		p.lastDraw = t
	}
}

// finish writes the final line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	line := fmt.Sprintf("%s: %s sent in %s (%s)", p.name, humanBytes(p.done-p.resumed), formatElapsed(t.Sub(p.start)), p.rate(t))
	if p.resumed > 0 {
		line += fmt.Sprintf("; %s were already on the server", humanBytes(p.resumed))
	}
	if p.terminal {
		p.redraw(line)
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintln(p.w, line)
}

// abort ends a terminal line so that an error message starts on a line of its own.
func (p *progress) abort() {
	if p == nil || !p.terminal {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w)
}

func (p *progress) draw(t time.Time) {
	p.redraw(fmt.Sprintf("%s  %s / %s  %3d%%  %s  ETA %s",
		p.name, humanBytes(p.done), humanBytes(p.total), p.percent(), p.rate(t), p.eta(t)))
	p.lastDraw = t
}

// redraw writes line over the current terminal line, without a newline.
func (p *progress) redraw(line string) {
	width := utf8.RuneCountInString(line)
	pad := strings.Repeat(" ", max(p.lastLen-width, 0))
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.lastLen = width
}

func (p *progress) percent() int64 {
	if p.total == 0 {
		return 0
	}
	return p.done * 100 / p.total
}

// step is the number of whole tenths done.
func (p *progress) step() int64 {
	if p.total == 0 {
		return 0
	}
	return p.done * 10 / p.total
}

// bytesPerSecond counts only what this run sent.
func (p *progress) bytesPerSecond(t time.Time) float64 {
	elapsed := t.Sub(p.start).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return float64(p.done-p.resumed) / elapsed
}

func (p *progress) rate(t time.Time) string {
	return fmt.Sprintf("%.1f MiB/s", p.bytesPerSecond(t)/(1<<20))
}

func (p *progress) eta(t time.Time) string {
	bps := p.bytesPerSecond(t)
	if bps <= 0 {
		return "--"
	}
	left := time.Duration(float64(p.total-p.done) / bps * float64(time.Second))
	return left.Round(time.Second).String()
}

// formatElapsed shows tenths of a second below a minute, whole seconds above.
func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// humanBytes formats n with binary units: 512 B, 1.5 KiB, 10.0 MiB, 1.25 GiB.
func humanBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
}
