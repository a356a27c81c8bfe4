package csvimport

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// barWidth is the number of cells of the terminal progress bar.
const barWidth = 30

// DefaultLogProgressInterval is the time between two lines of NewLogProgress.
const DefaultLogProgressInterval = 5 * time.Second

// NewProgress returns the progress display suited to f: a redrawn bar when
// f is a terminal, a line every DefaultLogProgressInterval otherwise.
func NewProgress(f *os.File) func(Progress) {
	if isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()) {
		return NewTerminalProgress(f)
	}
	return NewLogProgress(f, DefaultLogProgressInterval)
}

// NewTerminalProgress returns a Progress callback that redraws one line on
// the terminal w, such as
//
//	[============>                 ] 42% 420,000 rows 61,000 rows/s ETA 9s
//
// and ends the line on the last call. Without a known input size it shows
// the rows and the rate only.
func NewTerminalProgress(w io.Writer) func(Progress) {
	width := 0
	return func(p Progress) {
		line := FormatProgress(p)
		pad := ""
		if n := len(line); n < width {
			pad = strings.Repeat(" ", width-n)
		}
		width = max(width, len(line))
		end := ""
		if p.Finished {
			end = "\n"
		}
		fmt.Fprintf(w, "\r%s%s%s", line, pad, end)
	}
}

// NewLogProgress returns a Progress callback for a log or a pipe: a plain
// line at most every interval (DefaultLogProgressInterval when 0) and one
// at the end.
func NewLogProgress(w io.Writer, interval time.Duration) func(Progress) {
	if interval <= 0 {
		interval = DefaultLogProgressInterval
	}
	var last time.Duration
	started := false
	return func(p Progress) {
		if !p.Finished && started && p.Elapsed-last < interval {
			return
		}
		started, last = true, p.Elapsed
		state := "importing"
		if p.Finished {
			state = "done"
		}
		msg := state + ": " + formatCount(p.Rows) + " rows, " + formatCount(int64(p.Rate)) + " rows/s"
		if f, ok := p.Fraction(); ok {
			msg += ", " + strconv.Itoa(int(f*100)) + "%"
		}
		if eta, ok := p.ETA(); ok && !p.Finished {
			msg += ", ETA " + formatETA(eta)
		}
		fmt.Fprintln(w, msg)
	}
}

// FormatProgress renders p as one line with a bar:
// "[=====>    ] 42% 420,000 rows 61,000 rows/s ETA 9s".
func FormatProgress(p Progress) string {
	var b strings.Builder
	if f, ok := p.Fraction(); ok {
		if p.Finished {
			f = 1
		}
		filled := int(f * barWidth)
		b.WriteByte('[')
		b.WriteString(strings.Repeat("=", filled))
		if filled < barWidth {
			b.WriteByte('>')
			b.WriteString(strings.Repeat(" ", barWidth-filled-1))
		}
		b.WriteString("] ")
		b.WriteString(strconv.Itoa(int(f * 100)))
		b.WriteString("% ")
	}
	b.WriteString(formatCount(p.Rows))
	b.WriteString(" rows ")
	b.WriteString(formatCount(int64(p.Rate)))
	b.WriteString(" rows/s")
	if eta, ok := p.ETA(); ok && !p.Finished {
		b.WriteString(" ETA ")
		b.WriteString(formatETA(eta))
	}
	return b.String()
}

// formatCount writes n with thousands separators: 1234567 is "1,234,567".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatETA rounds to the second: "9s", "2m5s".
func formatETA(d time.Duration) string {
	return d.Round(time.Second).String()
}
