// Package sample generates deterministic synthetic vehicle telemetry in the
// CSV format of the original data set, for trying the service and for
// benchmarks. The same options always give the same bytes.
package sample

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Header is the first line of a generated file, as in the original data set.
const Header = "timestamp,speed,odometer,soc,elevation,shift_state"

// DefaultStart is the first timestamp when Options.Start is zero: the day
// the original data set was recorded.
var DefaultStart = time.Date(2022, 7, 12, 16, 40, 0, 0, time.UTC)

// Options describe one generated file.
type Options struct {
	// VehicleID is not written (the original files carry it in their
	// name) but it is mixed into the random stream, so vehicles sharing a
	// Seed still behave differently.
	VehicleID string
	// Rows is the number of data rows after the header.
	Rows int
	// Seed selects the random stream.
	Seed int64
	// Start is the earliest timestamp, cut to the millisecond; zero means
	// DefaultStart.
	Start time.Time
}

// lastMilli is the last millisecond of year 9999, the end of the range the
// service accepts.
var lastMilli = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC).UnixMilli()

// swapChance is the chance that a row is written before its predecessor;
// each swap displaces two rows, so about 1% of rows come out of order, as
// in the real files.
const swapChance = 0.005

// flushSize is how much output is collected before it is written.
const flushSize = 64 << 10

// Write generates opts.Rows rows of telemetry for one vehicle and writes
// them as CSV with Header. Timestamps are at least a second apart, so
// unique; about 1% of rows are swapped with their neighbour, as in the
// real files.
func Write(w io.Writer, opts Options) error {
	if opts.Rows < 0 {
		return fmt.Errorf("sample: rows %d is negative", opts.Rows)
	}
	start := opts.Start
	if start.IsZero() {
		start = DefaultStart
	}
	start = start.UTC().Truncate(time.Millisecond)
	if y := start.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("sample: start %v outside years 0001..9999", opts.Start)
	}

	h := fnv.New64a()
	_, _ = h.Write([]byte(opts.VehicleID))
	g := newGenerator(rand.New(rand.NewPCG(uint64(opts.Seed), h.Sum64())), start.UnixMilli())
	out := &output{w: w, buf: make([]byte, 0, flushSize+1024)}
	out.buf = append(out.buf, Header+"\n"...)

	var held row
	hasHeld := false
	for range opts.Rows {
		r := g.next()
		if r.ms > lastMilli {
			return errors.New("sample: timestamps would pass the year 9999; start earlier or ask for fewer rows")
		}
		if hasHeld && g.rng.Float64() < swapChance {
			out.row(&r)
			out.row(&held)
			hasHeld = false
		} else {
			if hasHeld {
				out.row(&held)
			}
			held, hasHeld = r, true
		}
		if err := out.flushIfFull(); err != nil {
			return err
		}
	}
	if hasHeld {
		out.row(&held)
	}
	return out.flush()
}

// row is one sample. speed -1 and shift 0 stand for NULL.
type row struct {
	ms        int64 // Unix milliseconds
	speed     int
	odometer  int64 // tenths of a km
	soc       int
	elevation int
	shift     byte
}

// output appends rows to a buffer and writes it in large pieces.
type output struct {
	w   io.Writer
	buf []byte

	day     int64 // days since the Unix epoch of date
	date    [11]byte
	hasDate bool
}

func (o *output) flushIfFull() error {
	if len(o.buf) < flushSize {
		return nil
	}
	return o.flush()
}

func (o *output) flush() error {
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	if err != nil {
		return fmt.Errorf("sample: write: %w", err)
	}
	return nil
}

// row appends r as "YYYY-MM-DD hh:mm:ss.fff,speed,odometer,soc,elevation,shift"
// with the fraction's trailing zeros trimmed as in the original files.
func (o *output) row(r *row) {
	b := o.buf
	day, msOfDay := floorDiv(r.ms, 86_400_000)
	if !o.hasDate || day != o.day {
		y, m, d := time.UnixMilli(r.ms).UTC().Date()
		o.date = [11]byte{
			byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
			byte('0' + m/10), byte('0' + m%10), '-', byte('0' + d/10), byte('0' + d%10), ' ',
		}
		o.day, o.hasDate = day, true
	}
	b = append(b, o.date[:]...)
	secs, ms := msOfDay/1000, msOfDay%1000
	hh, mm, ss := secs/3600, secs/60%60, secs%60
	b = append(b, byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10), '.')
	frac := [3]byte{byte('0' + ms/100), byte('0' + ms/10%10), byte('0' + ms%10)}
	n := 3
	for n > 1 && frac[n-1] == '0' {
		n--
	}
	b = append(b, frac[:n]...)

	b = append(b, ',')
	if r.speed < 0 {
		b = append(b, "NULL"...)
	} else {
		b = strconv.AppendInt(b, int64(r.speed), 10)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, r.odometer/10, 10)
	if t := r.odometer % 10; t != 0 {
		b = append(b, '.', byte('0'+t))
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.soc), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.elevation), 10)
	b = append(b, ',')
	if r.shift == 0 {
		b = append(b, "NULL"...)
	} else {
		b = append(b, r.shift)
	}
	o.buf = append(b, '\n')
}

func floorDiv(a, b int64) (q, r int64) {
	q, r = a/b, a%b
	if r < 0 {
		q, r = q-1, r+b
	}
	return q, r
}

// phase is what the vehicle is doing between scripted rows.
type phase int

const (
	parked phase = iota
	driving
)

// reading is a scripted (speed, shift state) pair; -1 and 0 stand for NULL.
type reading struct {
	speed int
	shift byte
}

// generator simulates one vehicle: parked stretches (speed and shift state
// NULL, sometimes charging) and trips in D with stops at lights. Between
// them it plays the rows a real car reports when parking (slowing to 0 in D,
// maybe reversing, P at speed 0, one row of speed 0 without a shift state)
// or leaving (maybe reversing, then D from standstill).
type generator struct {
	rng     *rand.Rand
	ms      int64
	started bool
	gap     int64 // extra milliseconds before the next row: the car slept

	phase    phase
	left     int       // rows left in the current parked stretch or trip
	script   []reading // rows to play before the phase goes on
	scriptAt int

	km        float64 // odometer
	soc       float64 // percent
	elevation float64 // metres
	home      float64 // elevation the road drifts back to
	slope     float64 // metres per 100 m, changing slowly
	speed     float64 // km/h
	target    float64 // speed the driver is heading for
	hold      int     // rows left standing at a light
	charging  bool
	chargeTo  float64
	chargeMin float64 // percent per minute
}

func newGenerator(rng *rand.Rand, startMs int64) *generator {
	g := &generator{rng: rng, ms: startMs, script: make([]reading, 0, 64)}
	g.km = 1000 + rng.Float64()*119_000
	g.soc = 20 + rng.Float64()*75
	if rng.IntN(10) < 3 { // near the sea: elevation may dip below zero
		g.home = rng.Float64() * 30
	} else {
		g.home = 20 + rng.Float64()*500
	}
	g.elevation = g.home + rng.NormFloat64()*10
	if rng.IntN(2) == 0 {
		g.park()
	} else { // in the middle of a trip
		g.phase, g.left = driving, g.tripRows()
		g.speed = 30 + rng.Float64()*40
		g.target = g.speed
	}
	return g
}

func (g *generator) scripted() bool { return len(g.script) > 0 }

// next returns the following sample in time order.
func (g *generator) next() row {
	if g.started {
		dt := g.step()
		g.ms += dt
		g.advance(dt)
	}
	g.started = true
	speed, shift := g.read()
	soc := int(math.Round(g.soc))
	return row{
		ms:        g.ms,
		speed:     speed,
		odometer:  int64(g.km * 10),
		soc:       min(max(soc, 0), 100),
		elevation: int(math.Round(g.elevation)),
		shift:     shift,
	}
}

// step is the time to the next row: about 10 s parked, 2 to 3.5 s moving,
// as in the real files, with millisecond jitter.
func (g *generator) step() int64 {
	var dt int64
	if !g.scripted() && g.phase == parked {
		dt = 10_000 + int64(g.rng.IntN(1500))
		if g.rng.IntN(300) == 0 { // a short sleep of the telemetry unit
			dt += int64(60_000 + g.rng.IntN(20*60_000))
		}
	} else {
		dt = 2000 + 250*int64(g.rng.IntN(7)) + int64(g.rng.IntN(3))
	}
	dt += g.gap
	g.gap = 0
	return dt
}

// advance moves the vehicle through dt milliseconds at its current speed.
func (g *generator) advance(dt int64) {
	minutes := float64(dt) / 60_000
	if !g.scripted() && g.phase == parked {
		if g.charging {
			g.soc += g.chargeMin * minutes
			if g.soc >= g.chargeTo {
				g.soc, g.charging = g.chargeTo, false
			}
		} else {
			g.soc -= 0.002 * minutes // standby drain
		}
		g.soc = max(g.soc, 0)
		return
	}

	km := g.speed * float64(dt) / 3_600_000
	g.km += km
	g.slope += g.rng.NormFloat64()*0.6 - g.slope*0.05 + (g.home-g.elevation)*0.0005
	g.slope = min(max(g.slope, -10), 10)
	climb := g.slope * km * 10 // slope is per 100 m
	g.elevation += climb
	used := km*(0.12+g.speed*0.0015) + max(climb, 0)*0.003 - max(-climb, 0)*0.0015
	g.soc = min(max(g.soc-used, 0), 100)
}

// read returns the speed and shift state of the current row and moves the
// simulation on to the next one.
func (g *generator) read() (int, byte) {
	if g.scripted() {
		r := g.script[g.scriptAt]
		g.scriptAt++
		if g.scriptAt == len(g.script) {
			g.script, g.scriptAt = g.script[:0], 0
		}
		g.speed = float64(max(r.speed, 0))
		return r.speed, r.shift
	}
	switch g.phase {
	case parked:
		g.left--
		if g.left <= 0 && !g.charging {
			g.depart()
		}
		return -1, 0
	default:
		g.drive()
		g.left--
		if g.left <= 0 || g.soc < 8 {
			g.arrive()
		}
		return int(math.Round(g.speed)), 'D'
	}
}

// drive changes the speed for one row: towards a target that changes now
// and then, standing a while when the target is a red light.
func (g *generator) drive() {
	if g.hold > 0 {
		g.hold--
		if g.hold == 0 {
			g.target = g.cruise()
		}
		return
	}
	if g.rng.IntN(50) == 0 {
		g.target = g.cruise()
		if g.rng.IntN(5) == 0 {
			g.target = 0 // a light or a junction ahead
		}
	}
	accel := min(max(g.target-g.speed, -8), 4)*(0.4+0.6*g.rng.Float64()) + g.rng.NormFloat64()*1.5
	g.speed = max(g.speed+accel, 0)
	if g.target == 0 && g.speed < 1 {
		g.speed, g.hold = 0, 3+g.rng.IntN(20)
	}
}

// cruise picks a speed for the road ahead: town, country road or motorway.
func (g *generator) cruise() float64 {
	switch n := g.rng.IntN(10); {
	case n < 5:
		return 25 + g.rng.Float64()*30
	case n < 9:
		return 55 + g.rng.Float64()*40
	default:
		return 95 + g.rng.Float64()*35
	}
}

func (g *generator) tripRows() int { return 60 + int(g.rng.ExpFloat64()*400) }

// park starts a parked stretch, charging when the battery asks for it or
// the driver feels like it.
func (g *generator) park() {
	g.phase, g.hold = parked, 0
	g.left = 20 + min(int(g.rng.ExpFloat64()*150), 3000)
	if g.soc < 30 || g.rng.IntN(4) == 0 {
		g.charging = true
		g.chargeTo = max(80+g.rng.Float64()*20, g.soc)
		g.chargeMin = 0.15 + g.rng.Float64()*0.85 // AC to DC
	}
}

// depart scripts leaving a parking space and starts a trip, often after
// the car slept a while.
func (g *generator) depart() {
	if g.rng.IntN(10) < 6 {
		g.gap = int64(5*60_000 + min(g.rng.ExpFloat64()*180*60_000, 16*60*60_000))
	}
	if g.rng.IntN(3) == 0 {
		for n := 1 + g.rng.IntN(3); n > 0; n-- {
			g.script = append(g.script, reading{g.rng.IntN(4), 'R'})
		}
	}
	g.script = append(g.script, reading{g.rng.IntN(2), 'D'})
	g.phase, g.left, g.hold = driving, g.tripRows(), 0
	g.speed, g.target = 0, g.cruise()
}

// arrive scripts parking: slow down to 0 in D, maybe reverse or pass
// through N, P at standstill, one row of 0 without shift state; then park.
func (g *generator) arrive() {
	for s := int(math.Round(g.speed)); s > 0; {
		s = max(s-4-g.rng.IntN(9), 0)
		g.script = append(g.script, reading{s, 'D'})
	}
	if g.rng.IntN(3) == 0 {
		for n := 1 + g.rng.IntN(3); n > 0; n-- {
			g.script = append(g.script, reading{g.rng.IntN(4), 'R'})
		}
		g.script = append(g.script, reading{0, 'R'})
	}
	if g.rng.IntN(10) == 0 {
		g.script = append(g.script, reading{0, 'N'})
	}
	for n := 1 + g.rng.IntN(3); n > 0; n-- {
		g.script = append(g.script, reading{0, 'P'})
	}
	g.script = append(g.script, reading{0, 0})
	g.park()
}
