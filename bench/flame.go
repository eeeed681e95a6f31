package main

import (
	"fmt"
	"hash/fnv"
	"html"
	"os"
	"sort"
	"strings"
)

// A flame graph of folded stacks, drawn here rather than with an outside
// tool: the root at the bottom, each frame as wide as its share of the
// samples, callees above their callers, siblings sorted by name. Frames
// narrower than flameMinShare are left out (their width stays in the
// parent). Hovering a frame shows its name and samples (SVG <title>).

const (
	flameWidth    = 1200.0
	flameRow      = 16.0
	flameMinShare = 0.002
	flameFont     = 11.0
)

type flameNode struct {
	name     string
	samples  int
	children map[string]*flameNode
}

func (n *flameNode) child(name string) *flameNode {
	if n.children == nil {
		n.children = map[string]*flameNode{}
	}
	c, ok := n.children[name]
	if !ok {
		c = &flameNode{name: name}
		n.children[name] = c
	}
	return c
}

func flameTree(folded map[string]int) *flameNode {
	root := &flameNode{name: "all"}
	for stack, n := range folded {
		root.samples += n
		cur := root
		for _, f := range strings.Split(stack, ";") {
			cur = cur.child(f)
			cur.samples += n
		}
	}
	return root
}

func depthOf(n *flameNode, total int) int {
	d := 0
	for _, c := range n.children {
		if float64(c.samples)/float64(total) >= flameMinShare {
			d = max(d, depthOf(c, total))
		}
	}
	return d + 1
}

// renderFlameGraph returns the SVG document.
func renderFlameGraph(title string, folded map[string]int) string {
	root := flameTree(folded)
	total := max(root.samples, 1)
	depth := depthOf(root, total)
	height := float64(depth)*flameRow + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">
<style>text { font-family: monospace; font-size: %.0fpx; pointer-events: none; } rect { stroke: white; stroke-width: 0.5; }</style>
<rect x="0" y="0" width="100%%" height="100%%" fill="#f8f8f8"/>
<text x="10" y="20" style="font-size: 13px">%s</text>
`, flameWidth, height, flameWidth, height, flameFont, html.EscapeString(title))
	var draw func(n *flameNode, x float64, level int)
	draw = func(n *flameNode, x float64, level int) {
		w := flameWidth * float64(n.samples) / float64(total)
		y := height - float64(level+1)*flameRow
		label := fmt.Sprintf("%s (%d samples, %.1f%%)", n.name, n.samples, 100*float64(n.samples)/float64(total))
		fmt.Fprintf(&b, `<g><title>%s</title><rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s"/>`,
			html.EscapeString(label), x, y, w, flameRow-1, flameColor(n.name))
		if chars := int(w / (flameFont * 0.62)); chars >= 4 {
			text := n.name
			if len(text) > chars {
				text = text[:chars-2] + ".."
			}
			fmt.Fprintf(&b, `<text x="%.2f" y="%.1f">%s</text>`, x+2, y+flameRow-4, html.EscapeString(text))
		}
		b.WriteString("</g>\n")
		names := make([]string, 0, len(n.children))
		for k := range n.children {
			names = append(names, k)
		}
		sort.Strings(names)
		cx := x
		for _, k := range names {
			c := n.children[k]
			if float64(c.samples)/float64(total) >= flameMinShare {
				draw(c, cx, level+1)
			}
			cx += flameWidth * float64(c.samples) / float64(total)
		}
	}
	draw(root, 0, 0)
	b.WriteString("</svg>\n")
	return b.String()
}

// flameColor: warm colours by name (stable across graphs); the extension's
// frames blue, so that they stand out.
func flameColor(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := h.Sum32()
	if strings.HasPrefix(name, "d.u.") {
		return fmt.Sprintf("rgb(%d,%d,255)", 80+v%60, 120+v%80)
	}
	return fmt.Sprintf("rgb(%d,%d,%d)", 205+v%50, 80+(v>>8)%130, 40+(v>>16)%40)
}

func writeFlameGraph(file, title string, folded map[string]int) error {
	return os.WriteFile(file, []byte(renderFlameGraph(title, folded)), 0o644)
}

// subStacks keeps the stacks that pass through a frame starting with
// prefix, cut to start at its outermost such frame: one part of the work
// (the uma-ticket grant) drawn on its own.
func subStacks(folded map[string]int, prefix string) map[string]int {
	out := map[string]int{}
	for stack, n := range folded {
		frames := strings.Split(stack, ";")
		for i, f := range frames {
			if strings.HasPrefix(f, prefix) {
				out[strings.Join(frames[i:], ";")] += n
				break
			}
		}
	}
	return out
}
