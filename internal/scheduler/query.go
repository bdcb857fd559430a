package scheduler

// The ECS cluster query language, used by memberOf placement constraints
// (and by ListContainerInstances' filter). An expression is
//
//	expr  := and { ("or" | "||") and }
//	and   := unary { ("and" | "&&") unary }
//	unary := ("not" | "!") unary | "(" expr ")" | cond
//	cond  := subject op [argument]
//
// where argument is a word, a quoted string, or for in/not_in a list
// "[a, b, ...]". Words run until whitespace or one of ( ) [ ] , = ! < > & |
// so values such as t2.*, us-east-1a or 2018-06-18T22:28:28+00:00 need no
// quotes; anything else (spaces, a regular expression with | or parentheses)
// goes in single or double quotes. Keywords and operator words are lower case,
// as in the ECS documentation. The lexer and parser are hand-written: the
// grammar is small and no library speaks it.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Expr is a parsed cluster query language expression. The zero Expr matches
// every node.
type Expr struct {
	src  string
	root qnode
}

// String returns the expression as it was written.
func (e *Expr) String() string { return e.src }

// Match reports whether the node satisfies the expression. task:group and
// runningTasksCount see the node's Groups and RunningTasks.
func (e *Expr) Match(n *Node) bool {
	if e == nil || e.root == nil {
		return true
	}
	return e.root.eval(n)
}

// ExprError is a syntax error in a cluster query language expression. Its
// message is what the API returns in an InvalidParameterException.
type ExprError struct {
	Expr string // the whole expression
	Pos  int    // byte offset of the offending token
	Msg  string
}

func (e *ExprError) Error() string {
	return fmt.Sprintf("Invalid placement constraint expression %q: %s at position %d", e.Expr, e.Msg, e.Pos)
}

// maxExprLen bounds what we parse; ECS caps a constraint expression at 2000
// characters.
const maxExprLen = 2000

// maxDepth bounds nesting so a hostile expression cannot exhaust the stack.
const maxDepth = 100

// ParseExpression parses a cluster query language expression. Errors are
// *ExprError.
func ParseExpression(s string) (*Expr, error) {
	if len(s) > maxExprLen {
		return nil, &ExprError{Expr: s, Msg: fmt.Sprintf("longer than %d characters", maxExprLen)}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{src: s, toks: toks}
	if p.peek().kind == tEOF {
		return nil, p.errf(p.peek(), "empty expression")
	}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errf(t, "unexpected %s", t)
	}
	return &Expr{src: s, root: root}, nil
}

// ---- lexer ----

type tkind int

const (
	tEOF    tkind = iota
	tWord         // bare word: subject, keyword or value
	tString       // quoted string (never a keyword)
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
	tOp   // == != > >= < <= =~ !~
	tBang // !
	tAnd  // &&
	tOr   // ||
)

type token struct {
	kind tkind
	text string
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

func isWordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '(', ')', '[', ']', ',', '=', '!', '<', '>', '&', '|', '\'', '"':
		return false
	}
	return true
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tLBrack, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tRBrack, "]", i})
			i++
		case c == ',':
			toks = append(toks, token{tComma, ",", i})
			i++
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, &ExprError{Expr: s, Pos: i, Msg: "unterminated quoted string"}
			}
			toks = append(toks, token{tString, s[i+1 : i+1+end], i})
			i += end + 2
		case c == '&' || c == '|':
			if i+1 >= len(s) || s[i+1] != c {
				return nil, &ExprError{Expr: s, Pos: i, Msg: fmt.Sprintf("unexpected '%c' (did you mean '%c%c'?)", c, c, c)}
			}
			k := tAnd
			if c == '|' {
				k = tOr
			}
			toks = append(toks, token{k, s[i : i+2], i})
			i += 2
		case c == '=' || c == '!' || c == '<' || c == '>':
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", ">=", "<=", "=~", "!~":
				toks = append(toks, token{tOp, two, i})
				i += 2
				continue
			}
			switch c {
			case '<', '>':
				toks = append(toks, token{tOp, string(c), i})
			case '!':
				toks = append(toks, token{tBang, "!", i})
			default:
				return nil, &ExprError{Expr: s, Pos: i, Msg: "unexpected '=' (did you mean '=='?)"}
			}
			i++
		default:
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{tWord, s[i:j], i})
			i = j
		}
	}
	return append(toks, token{tEOF, "", len(s)}), nil
}

// ---- parser ----

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errf(t token, format string, args ...any) error {
	return &ExprError{Expr: p.src, Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func isWord(t token, w string) bool { return t.kind == tWord && t.text == w }

func (p *parser) or(depth int) (qnode, error) {
	left, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == tOr || isWord(t, "or"); t = p.peek() {
		p.next()
		right, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		left = orNode{left, right}
	}
	return left, nil
}

func (p *parser) and(depth int) (qnode, error) {
	left, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == tAnd || isWord(t, "and"); t = p.peek() {
		p.next()
		right, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		left = andNode{left, right}
	}
	return left, nil
}

func (p *parser) unary(depth int) (qnode, error) {
	if depth > maxDepth {
		return nil, p.errf(p.peek(), "nested more than %d deep", maxDepth)
	}
	t := p.peek()
	switch {
	case t.kind == tBang || isWord(t, "not"):
		p.next()
		inner, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		return notNode{inner}, nil
	case t.kind == tLParen:
		p.next()
		inner, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errf(c, "expected ')' but found %s", c)
		}
		return inner, nil
	}
	return p.cond()
}

// The subjects the language knows; attribute: is a prefix.
const (
	subjAttribute    = "attribute:"
	subjInstanceID   = "ec2InstanceId"
	subjTaskGroup    = "task:group"
	subjRunningTasks = "runningTasksCount"
	subjAgentConn    = "agentConnected"
	subjAgentVersion = "agentVersion"
	subjRegisteredAt = "registeredAt"
)

// attrNameMaxLength is ECS's limit on an attribute name.
const attrNameMaxLength = 128

// operator names, normalised to the symbolic form.
var opWords = map[string]string{
	"equals":             "==",
	"not_equals":         "!=",
	"greater_than":       ">",
	"greater_than_equal": ">=",
	"less_than":          "<",
	"less_than_equal":    "<=",
	"exists":             "exists",
	"not_exists":         "!exists",
	"in":                 "in",
	"not_in":             "!in",
	"matches":            "=~",
	"not_matches":        "!~",
}

func (p *parser) cond() (qnode, error) {
	st := p.next()
	if st.kind != tWord || opWords[st.text] != "" || isKeyword(st.text) {
		return nil, p.errf(st, "expected a subject (attribute:<name>, ec2InstanceId, task:group, runningTasksCount, agentConnected, agentVersion or registeredAt) but found %s", st)
	}
	c := &condNode{subject: st.text}
	switch {
	case strings.HasPrefix(st.text, subjAttribute):
		c.attr = st.text[len(subjAttribute):]
		if c.attr == "" || len(c.attr) > attrNameMaxLength {
			return nil, p.errf(st, "attribute name must have 1 to %d characters", attrNameMaxLength)
		}
	case st.text == subjInstanceID, st.text == subjTaskGroup, st.text == subjRunningTasks,
		st.text == subjAgentConn, st.text == subjAgentVersion, st.text == subjRegisteredAt:
	default:
		return nil, p.errf(st, "unknown subject %s", st)
	}

	ot := p.next()
	switch {
	case ot.kind == tOp:
		c.op = ot.text
	case ot.kind == tBang:
		w := p.next()
		if !isWord(w, "exists") && !isWord(w, "in") {
			return nil, p.errf(w, "expected 'exists' or 'in' after '!' but found %s", w)
		}
		c.op = "!" + w.text
	case ot.kind == tWord && opWords[ot.text] != "":
		c.op = opWords[ot.text]
	default:
		return nil, p.errf(ot, "expected an operator after %s but found %s", st, ot)
	}

	switch c.op {
	case "exists", "!exists":
		return c, nil
	case "in", "!in":
		if lb := p.next(); lb.kind != tLBrack {
			return nil, p.errf(lb, "expected '[' after %s but found %s", ot, lb)
		}
		for {
			v := p.next()
			if v.kind != tWord && v.kind != tString {
				return nil, p.errf(v, "expected a value in the list but found %s", v)
			}
			c.list = append(c.list, v.text)
			sep := p.next()
			if sep.kind == tRBrack {
				break
			}
			if sep.kind != tComma {
				return nil, p.errf(sep, "expected ',' or ']' but found %s", sep)
			}
		}
		return c, nil
	}
	v := p.next()
	if v.kind != tWord && v.kind != tString {
		return nil, p.errf(v, "expected a value after %s but found %s", ot, v)
	}
	c.arg = v.text
	switch c.op {
	case "=~", "!~":
		// ECS takes Java regular expressions and matches the whole value
		// (String.matches); RE2 covers the common subset.
		re, err := regexp.Compile(`^(?:` + c.arg + `)$`)
		if err != nil {
			return nil, p.errf(v, "invalid regular expression %q", c.arg)
		}
		c.re = re
	case ">", ">=", "<", "<=":
		if err := c.prepareOrdered(); err != nil {
			return nil, p.errf(v, "%v", err)
		}
	}
	return c, nil
}

func isKeyword(w string) bool { return w == "and" || w == "or" || w == "not" }

// ---- AST and evaluation ----

type qnode interface{ eval(n *Node) bool }

type andNode struct{ l, r qnode }
type orNode struct{ l, r qnode }
type notNode struct{ x qnode }

func (a andNode) eval(n *Node) bool { return a.l.eval(n) && a.r.eval(n) }
func (o orNode) eval(n *Node) bool  { return o.l.eval(n) || o.r.eval(n) }
func (x notNode) eval(n *Node) bool { return !x.x.eval(n) }

type condNode struct {
	subject string
	attr    string // for attribute:<name>
	op      string // symbolic: == != > >= < <= =~ !~ exists !exists in !in
	arg     string
	list    []string
	re      *regexp.Regexp
	argTime time.Time // registeredAt argument
}

// registeredAt accepts the formats the ECS documentation lists.
var timeLayouts = []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02"}

func parseTime(s string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (c *condNode) prepareOrdered() error {
	switch c.subject {
	case subjRegisteredAt:
		t, ok := parseTime(c.arg)
		if !ok {
			return fmt.Errorf("invalid date %q (want 2018-06-18T22:28:28+00:00, 2018-06-18T22:28:28 or 2018-06-18)", c.arg)
		}
		c.argTime = t
	case subjRunningTasks:
		if _, err := strconv.Atoi(c.arg); err != nil {
			return fmt.Errorf("runningTasksCount compares with an integer, not %q", c.arg)
		}
	case subjTaskGroup, subjInstanceID, subjAgentConn:
		return fmt.Errorf("%s cannot be ordered", c.subject)
	}
	return nil
}

// values returns the subject's values on the node: none when it is absent,
// one for most subjects, one per task group present for task:group.
func (c *condNode) values(n *Node, f func(v string) bool) {
	switch c.subject {
	case subjInstanceID:
		if n.InstanceID != "" {
			f(n.InstanceID)
		}
	case subjTaskGroup:
		for g, k := range n.Groups {
			if k > 0 && !f(g) {
				return
			}
		}
	case subjRunningTasks:
		f(strconv.Itoa(n.RunningTasks))
	case subjAgentConn:
		f(strconv.FormatBool(!n.Disconnected))
	case subjAgentVersion:
		if n.AgentVersion != "" {
			f(n.AgentVersion)
		}
	case subjRegisteredAt:
		if !n.RegisteredAt.IsZero() {
			f(n.RegisteredAt.UTC().Format(time.RFC3339))
		}
	default:
		if v, ok := n.Attributes[c.attr]; ok {
			f(v)
		}
	}
}

// eval: a condition holds when some value of the subject satisfies the
// operator. An absent subject (an attribute the node lacks) satisfies only
// !exists: as in ECS, "attribute:stack != prod" selects the instances that
// have a stack attribute other than prod; not(attribute:stack == prod) also
// selects those without one.
func (c *condNode) eval(n *Node) bool {
	if c.op == "!exists" {
		found := false
		c.values(n, func(string) bool { found = true; return false })
		return !found
	}
	found := false
	c.values(n, func(v string) bool {
		if c.test(n, v) {
			found = true
			return false
		}
		return true
	})
	return found
}

func (c *condNode) test(n *Node, v string) bool {
	switch c.op {
	case "exists":
		return true
	case "==":
		return v == c.arg
	case "!=":
		return v != c.arg
	case "in":
		return containsStr(c.list, v)
	case "!in":
		return !containsStr(c.list, v)
	case "=~":
		return c.re.MatchString(v)
	case "!~":
		return !c.re.MatchString(v)
	}
	cmp := c.compare(n, v)
	switch c.op {
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	}
	return false
}

// compare orders the node's value against the argument: dates for
// registeredAt, integers for runningTasksCount, dotted versions for
// agentVersion; an attribute compares as numbers when both sides are
// numbers, as strings otherwise.
func (c *condNode) compare(n *Node, v string) int {
	switch c.subject {
	case subjRegisteredAt:
		return n.RegisteredAt.Compare(c.argTime)
	case subjAgentVersion:
		return compareVersions(v, c.arg)
	}
	a, errA := strconv.ParseFloat(v, 64)
	b, errB := strconv.ParseFloat(c.arg, 64)
	if errA == nil && errB == nil {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	}
	return strings.Compare(v, c.arg)
}

// compareVersions orders dotted versions numerically part by part (1.14.5 <
// 1.100.0); a non-numeric part compares as a string.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(strings.TrimPrefix(a, "v"), "."), strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := "0", "0"
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		xi, errX := strconv.Atoi(x)
		yi, errY := strconv.Atoi(y)
		if errX == nil && errY == nil {
			if xi != yi {
				if xi < yi {
					return -1
				}
				return 1
			}
			continue
		}
		if r := strings.Compare(x, y); r != 0 {
			return r
		}
	}
	return 0
}
