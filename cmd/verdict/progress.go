package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws "[#####-----] done/total what" on one terminal line,
// redrawn at most every progressEvery. It draws nothing when its writer is
// not a terminal, so that logs and pipes stay clean.
type progressBar struct {
	w     io.Writer // nil: not a terminal
	what  string
	last  time.Time
	drawn bool
}

const progressEvery = 100 * time.Millisecond

// newProgressBar returns a bar on w when w is a terminal (a character
// device), else a bar that draws nothing.
func newProgressBar(w io.Writer, what string) *progressBar {
	f, ok := w.(*os.File)
	if !ok {
		return &progressBar{what: what}
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return &progressBar{what: what}
	}
	return &progressBar{w: w, what: what}
}

// Set shows done of total.
func (b *progressBar) Set(done, total int) {
	if b.w == nil || total <= 0 {
		return
	}
	now := time.Now()
	if done < total && now.Sub(b.last) < progressEvery {
		return
	}
	b.last = now
	const width = 30
	filled := width * done / total
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat("-", width-filled), done, total, b.what)
	b.drawn = true
}

// Done clears the bar's line.
func (b *progressBar) Done() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}
