package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteIngest prints rep as a readable table.
func WriteIngest(w io.Writer, rep *IngestReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ingest benchmark: %s rows, %.1f MiB CSV, %d KiB chunks, %d in parallel; %s\n",
		thousands(int64(rep.Rows)), mib(rep.FileBytes), rep.ChunkBytes>>10, rep.Parallel, runsNote(rep.Runs, rep.Warmup))
	writeEnvironment(&b, rep.Environment)
	fmt.Fprintf(&b, "baseline: %s\n\n", rep.Baseline)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "step\tmedian s\truns s\trows/s")
	for _, s := range []struct {
		name string
		sec  Seconds
	}{
		{"upload (HTTP, chunks stored)", rep.Upload},
		{"finalize", rep.Finalize},
		{"upload + finalize", sumSeconds(rep.Upload, rep.Finalize)},
		{`psql \copy`, rep.Copy},
	} {
		fmt.Fprintf(tw, "%s\t%.3f\t%s\t%s\n", s.name, s.sec.Median, formatRuns(s.sec.Runs), thousands(int64(ratio(float64(rep.Rows), s.sec.Median))))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nfinalize / \\copy: %.2f\n", rep.FinalizeToCopy)
	r := rep.ServerRSS
	fmt.Fprintf(&b, "server RSS MiB: idle %.1f, upload %.1f, finalize %.1f (highest 100 ms samples), peak %.1f (VmHWM, whole process)\n",
		mib(r.Idle), mib(r.Upload), mib(r.Finalize), mib(r.Peak))
	writeTargets(&b, rep.Targets)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteExport prints rep as a readable table.
func WriteExport(w io.Writer, rep *ExportReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "export benchmark: %s rows of one vehicle; %s; a fresh server process per format\n",
		thousands(int64(rep.Rows)), runsNote(rep.Runs, rep.Warmup))
	writeEnvironment(&b, rep.Environment)
	fmt.Fprintf(&b, "baseline: %s\n\n", rep.Baseline)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "format\tmedian s\tbytes\trows/s\tratio to \\copy\tidle RSS MiB\texport RSS MiB\tpeak RSS MiB\t")
	fmt.Fprintf(tw, "\\copy TO\t%.3f\t%s\t%s\t1.00\t\t\t\t\n", rep.Copy.Median, thousands(rep.CopyBytes),
		thousands(int64(ratio(float64(rep.Rows), rep.Copy.Median))))
	for _, fr := range rep.Formats {
		if fr.Skipped != "" {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t\t\n", fr.Format)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%s\t%s\t%.2f\t%.1f\t%.1f\t%.1f\t\n", fr.Format, fr.Seconds.Median, thousands(fr.Bytes),
			thousands(int64(fr.RowsPerSecond)), fr.RatioToCopy, mib(fr.IdleRSS), mib(fr.ExportRSS), mib(fr.PeakRSS))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("\nexport RSS: highest 100 ms sample during the timed exports; peak RSS: VmHWM of that format's server process, warm-up included\n")
	b.WriteString("runs, s:\n")
	fmt.Fprintf(&b, "  \\copy TO: %s\n", formatRuns(rep.Copy.Runs))
	for _, fr := range rep.Formats {
		if fr.Skipped != "" {
			fmt.Fprintf(&b, "  %s: skipped, %s\n", fr.Format, fr.Skipped)
			continue
		}
		fmt.Fprintf(&b, "  %s: %s\n", fr.Format, formatRuns(fr.Seconds.Runs))
	}
	writeTargets(&b, rep.Targets)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeEnvironment(b *strings.Builder, env Environment) {
	fmt.Fprintf(b, "%s\n", env.Postgres)
	fmt.Fprintf(b, "%d CPUs, %s, load average %s at the start, %s at the end\n", env.CPUs, env.GoVersion, env.LoadBefore, env.LoadAfter)
	if env.TempDir != "" {
		fmt.Fprintf(b, "kept: %s\n", env.TempDir)
	}
}

func writeTargets(b *strings.Builder, ts []Target) {
	b.WriteString("\ntargets (RSS limits in MB = 10^6 bytes, shown in MiB):\n")
	for _, t := range ts {
		fmt.Fprintf(b, "  %s\n", t)
	}
}

func runsNote(runs int, warmup bool) string {
	s := "one run"
	if runs > 1 {
		s = fmt.Sprintf("median of %d runs", runs)
	}
	if warmup {
		s += " after a warm-up run"
	}
	return s
}

// sumSeconds adds two steps run by run.
func sumSeconds(a, b Seconds) Seconds {
	s := Seconds{Runs: make([]float64, min(len(a.Runs), len(b.Runs)))}
	for i := range s.Runs {
		s.Runs[i] = a.Runs[i] + b.Runs[i]
	}
	s.Median = median(s.Runs)
	return s
}

func formatRuns(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(parts, " ")
}

// thousands formats n with comma separators: 1,000,000.
func thousands(n int64) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
