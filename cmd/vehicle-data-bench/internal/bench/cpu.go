package bench

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuGroups are the kinds of process whose CPU time a capacity run reports: PostgreSQL's
// (every backend and its helpers), the replicas, nginx, the load generator (this process and
// pgbench) and everything else on the machine.
var cpuGroups = []string{"postgres", "vehicle-data", "nginx", "load generator", "other"}

// userHZ is the kernel's clock tick for /proc's CPU times: 100 on every Linux this runs on.
const userHZ = 100

// cpuUse is the CPU cores each group kept busy during a run, on average, and the idle rest.
type cpuUse struct {
	cores map[string]float64
	idle  float64
}

// measureCPU runs fn and reports the CPU time every process on the machine used meanwhile,
// by group. A process that started during the run counts in full; one that ended counts in its
// parent's time for waited-for children (the postmaster reaps backends, autovacuum and parallel
// workers; this process reaps pgbench), so nothing is missed but orphans.
func measureCPU(fn func() error) (cpuUse, error) {
	before, idleBefore := procTicks(), idleTicks()
	began := time.Now()
	err := fn()
	wall := time.Since(began).Seconds()
	after, idleAfter := procTicks(), idleTicks()
	use := cpuUse{cores: map[string]float64{}}
	for pid, a := range after {
		b := before[pid]
		if b.group != a.group { // a reused pid
			b = procTick{}
		}
		use.cores[a.group] += float64(a.ticks-b.ticks) / userHZ / wall
	}
	// A process that ended meanwhile reached its parent's children's time whole, the part
	// before the run included: take that part off again.
	for pid, b := range before {
		if _, alive := after[pid]; !alive {
			use.cores[b.group] -= float64(b.ticks) / userHZ / wall
		}
	}
	use.idle = float64(idleAfter-idleBefore) / userHZ / wall
	return use, err
}

type procTick struct {
	group string
	ticks int64 // utime + stime + cutime + cstime
}

// procTicks reads every process's CPU time from /proc/<pid>/stat.
func procTicks() map[int]procTick {
	out := map[int]procTick{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ... : comm may hold spaces and parentheses, so cut at the last ')'.
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open {
			continue
		}
		comm := string(b[open+1 : end])
		f := strings.Fields(string(b[end+1:]))
		if len(f) < 15 {
			continue
		}
		var ticks int64
		for _, i := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
		out[pid] = procTick{group: cpuGroup(pid, self, comm), ticks: ticks}
	}
	return out
}

func cpuGroup(pid, self int, comm string) string {
	switch {
	case pid == self || comm == "pgbench":
		return "load generator"
	case comm == "postgres":
		return "postgres"
	case comm == "vehicle-data":
		return "vehicle-data"
	case comm == "nginx":
		return "nginx"
	}
	return "other"
}

// idleTicks is the machine's idle and iowait time from the first line of /proc/stat.
func idleTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0
	}
	idle, _ := strconv.ParseInt(f[4], 10, 64)
	iowait, _ := strconv.ParseInt(f[5], 10, 64)
	return idle + iowait
}

func cpuCount() int { return runtime.NumCPU() }
