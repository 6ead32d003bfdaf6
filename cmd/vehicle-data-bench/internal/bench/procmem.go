package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procMemory is a process's resident memory as /proc/<pid>/status reports it.
type procMemory struct {
	RSS int64 // VmRSS: resident now, in bytes
	HWM int64 // VmHWM: the most ever resident, in bytes
}

// readProcMemory reads VmRSS and VmHWM of a running process (Linux only).
func readProcMemory(pid int) (procMemory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	m, err := parseProcStatus(f)
	if err != nil {
		return procMemory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	return m, nil
}

// parseProcStatus picks VmRSS and VmHWM ("VmRSS:	  12345 kB") out of a status file.
func parseProcStatus(r io.Reader) (procMemory, error) {
	var (
		m             procMemory
		gotRSS, gotHW bool
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", name, sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return m, fmt.Errorf("unexpected %s value %q", name, fields[0])
		}
		if name == "VmRSS" {
			m.RSS, gotRSS = kb<<10, true
		} else {
			m.HWM, gotHW = kb<<10, true
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if !gotRSS || !gotHW {
		// A zombie's status has no Vm lines.
		return m, fmt.Errorf("no VmRSS/VmHWM in status (has the process exited?)")
	}
	return m, nil
}

// sampleInterval is how often a memSampler reads VmRSS.
const sampleInterval = 100 * time.Millisecond

// memSampler keeps the highest VmRSS seen in each named phase of a process's life.
// VmHWM cannot be reset, so it only gives the peak over the whole process; sampling
// gives a peak per phase, which can miss a spike shorter than the interval.
type memSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	phase string
	peaks map[string]int64
	err   error // the first failed read
}

// startMemSampler samples pid every sampleInterval, attributing samples to phase.
func startMemSampler(pid int, phase string) *memSampler {
	s := &memSampler{
		pid:   pid,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		phase: phase,
		peaks: map[string]int64{},
	}
	s.sample()
	go s.loop()
	return s
}

func (s *memSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *memSampler) sample() {
	m, err := readProcMemory(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return
	}
	s.peaks[s.phase] = max(s.peaks[s.phase], m.RSS)
}

// setPhase attributes the following samples to name, taking one sample on each side of
// the switch so that short phases get at least one.
func (s *memSampler) setPhase(name string) {
	s.sample()
	s.mu.Lock()
	s.phase = name
	s.mu.Unlock()
	s.sample()
}

// maxPeak is the highest VmRSS sampled in any phase.
func (s *memSampler) maxPeak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m int64
	for _, v := range s.peaks {
		m = max(m, v)
	}
	return m
}

// peak is the highest VmRSS sampled in phase name, 0 if none.
func (s *memSampler) peak(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peaks[name]
}

// close stops sampling and returns the first read error, if any.
func (s *memSampler) close() error {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
