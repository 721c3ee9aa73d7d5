package store

import (
	"strconv"
	"strings"
)

// Values returns the VALUES list of a multi-row INSERT of rows rows of cols
// columns each, numbered from 1: ($1, $2), ($3, $4) on PostgreSQL.
//
// On SQLite the markers are plain ?: SQLite accepts $1 too, but keeps it as
// a name in a list it searches once to prepare and again to bind each
// parameter, which made an INSERT of a few thousand parameters quadratic
// (most of a sandbox seed's time under the race detector). An anonymous ?
// is numbered in order and bound by position, without the list.
func (d Dialect) Values(rows, cols int) string {
	var sb strings.Builder
	sb.Grow(rows * cols * 7)
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			if d == SQLite {
				sb.WriteByte('?')
			} else {
				sb.WriteByte('$')
				sb.WriteString(strconv.Itoa(r*cols + c + 1))
			}
		}
		sb.WriteByte(')')
	}
	return sb.String()
}
