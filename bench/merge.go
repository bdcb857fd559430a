package bench

import (
	"strings"
)

// Merging a partial run into an existing report (-merge): the benchmarks
// that ran replace their own section and their own rows of the summary
// table; everything else in the file, other benchmarks' sections and rows
// and the header with its machine and date, stays as it was. Each section
// states what it ran on, so a merged file stays honest.

// mdSection is a "## " heading and the text up to the next one.
type mdSection struct {
	heading string // without "## "; "" for the text before the first
	body    string // the heading line included
}

// splitSections cuts Markdown at its "## " headings.
func splitSections(md string) []mdSection {
	var out []mdSection
	cur := mdSection{}
	for _, line := range strings.SplitAfter(md, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			out = append(out, cur)
			cur = mdSection{heading: strings.TrimSpace(h)}
		}
		cur.body += line
	}
	return append(out, cur)
}

// firstCell is the first cell of a Markdown table row, unescaped, or "".
func firstCell(row string) string {
	row = strings.TrimSpace(row)
	if !strings.HasPrefix(row, "| ") {
		return ""
	}
	cell, _, _ := strings.Cut(strings.ReplaceAll(row[2:], "\\|", "\x00"), " |")
	return strings.ReplaceAll(cell, "\x00", "|")
}

// MergeMarkdown puts the report r of some benchmarks into old, a report
// written before: r's benchmarks' summary rows (matched by figure name, or
// by title for a failed benchmark) and sections (by title) replace theirs
// in old, or are added (rows at the end of the table, sections before "How
// to reproduce everything"). A summary row whose figure r no longer has is
// kept: rename figures with care.
func MergeMarkdown(old string, r Report) string {
	fresh := splitSections(r.Markdown())
	byHeading := map[string]string{}
	for _, s := range fresh {
		byHeading[s.heading] = s.body
	}
	names := map[string]bool{}
	var rows []string
	for _, line := range strings.SplitAfter(byHeading["Summary"], "\n") {
		if c := firstCell(line); c != "" && c != "figure" && !strings.HasPrefix(c, "---") {
			names[c] = true
			rows = append(rows, line)
		}
	}
	titles := map[string]bool{}
	for _, o := range r.Outcomes {
		titles[o.Bench.Title()] = true
		names[o.Bench.Title()] = true // a failure's row
	}
	var b strings.Builder
	done := map[string]bool{}
	for _, s := range splitSections(old) {
		switch {
		case s.heading == "Summary":
			b.WriteString(mergeTable(s.body, names, rows))
		case titles[s.heading]:
			if !done[s.heading] {
				b.WriteString(byHeading[s.heading])
				done[s.heading] = true
			}
		case s.heading == "How to reproduce everything":
			for _, o := range r.Outcomes {
				if t := o.Bench.Title(); !done[t] {
					b.WriteString(byHeading[t])
					done[t] = true
				}
			}
			b.WriteString(s.body)
		default:
			b.WriteString(s.body)
		}
	}
	for _, o := range r.Outcomes {
		if t := o.Bench.Title(); !done[t] {
			b.WriteString(byHeading[t])
			done[t] = true
		}
	}
	return b.String()
}

// mergeTable drops the rows of section whose first cell is in names and
// adds rows after the table's last row.
func mergeTable(section string, names map[string]bool, rows []string) string {
	lines := strings.SplitAfter(section, "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "|") {
			last = i
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if !(strings.HasPrefix(l, "|") && names[firstCell(l)]) {
			b.WriteString(l)
		}
		if i == last {
			for _, r := range rows {
				b.WriteString(r)
			}
		}
	}
	if last < 0 {
		for _, r := range rows {
			b.WriteString(r)
		}
	}
	return b.String()
}
