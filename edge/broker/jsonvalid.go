package broker

// validJSON reports whether p is one valid JSON value (RFC 8259), as
// encoding/json.Valid does, several times faster: the broker checks every
// payload that arrives from NATS before embedding it in a frame.
func validJSON(p []byte) bool {
	i := skipSpace(p, 0)
	i, ok := value(p, i, 0)
	return ok && skipSpace(p, i) == len(p)
}

// maxDepth bounds nesting, as encoding/json does (10000).
const maxDepth = 10000

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

func value(p []byte, i, depth int) (int, bool) {
	if i >= len(p) {
		return i, false
	}
	switch c := p[i]; {
	case (c == '{' || c == '[') && depth >= maxDepth:
		return i, false
	case c == '{':
		i = skipSpace(p, i+1)
		if i < len(p) && p[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(p) || p[i] != '"' {
				return i, false
			}
			var ok bool
			if i, ok = str(p, i); !ok {
				return i, false
			}
			i = skipSpace(p, i)
			if i >= len(p) || p[i] != ':' {
				return i, false
			}
			if i, ok = value(p, skipSpace(p, i+1), depth+1); !ok {
				return i, false
			}
			i = skipSpace(p, i)
			if i >= len(p) {
				return i, false
			}
			if p[i] == '}' {
				return i + 1, true
			}
			if p[i] != ',' {
				return i, false
			}
			i = skipSpace(p, i+1)
		}
	case c == '[':
		i = skipSpace(p, i+1)
		if i < len(p) && p[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = value(p, i, depth+1); !ok {
				return i, false
			}
			i = skipSpace(p, i)
			if i >= len(p) {
				return i, false
			}
			if p[i] == ']' {
				return i + 1, true
			}
			if p[i] != ',' {
				return i, false
			}
			i = skipSpace(p, i+1)
		}
	case c == '"':
		return str(p, i)
	case c == '-' || c >= '0' && c <= '9':
		return number(p, i)
	case c == 't':
		return literal(p, i, "true")
	case c == 'f':
		return literal(p, i, "false")
	case c == 'n':
		return literal(p, i, "null")
	}
	return i, false
}

func literal(p []byte, i int, lit string) (int, bool) {
	if len(p)-i < len(lit) || string(p[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// str checks the string starting at p[i] == '"'. Like encoding/json, it
// accepts any byte >= 0x20 inside (invalid UTF-8 included).
func str(p []byte, i int) (int, bool) {
	i++
	for i < len(p) {
		c := p[i]
		switch {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(p) {
				return i, false
			}
			switch p[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(p)-i < 5 {
					return i, false
				}
				for _, h := range p[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return i, false
					}
				}
				i += 5
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

func number(p []byte, i int) (int, bool) {
	if p[i] == '-' {
		i++
	}
	switch {
	case i >= len(p):
		return i, false
	case p[i] == '0':
		i++
	case p[i] >= '1' && p[i] <= '9':
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
	default:
		return i, false
	}
	if i < len(p) && p[i] == '.' {
		i++
		if i >= len(p) || p[i] < '0' || p[i] > '9' {
			return i, false
		}
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
	}
	if i < len(p) && (p[i] == 'e' || p[i] == 'E') {
		i++
		if i < len(p) && (p[i] == '+' || p[i] == '-') {
			i++
		}
		if i >= len(p) || p[i] < '0' || p[i] > '9' {
			return i, false
		}
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
	}
	return i, true
}
