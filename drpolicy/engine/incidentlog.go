package engine

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// IncidentLog appends an incident to w as one JSON line each time it
// reaches a new stage, so the file is the incident's history.
type IncidentLog struct {
	w    io.Writer
	last map[string]string
}

// NewIncidentLog writes to w.
func NewIncidentLog(w io.Writer) *IncidentLog {
	return &IncidentLog{w: w, last: map[string]string{}}
}

// Record writes each incident whose stages changed since it was last written.
func (l *IncidentLog) Record(incidents []dr.Incident) error {
	for _, inc := range incidents {
		line, err := json.Marshal(inc)
		if err != nil {
			return err
		}
		if l.last[inc.ID] == string(line) {
			continue
		}
		if _, err := fmt.Fprintf(l.w, "%s\n", line); err != nil {
			return fmt.Errorf("incident log: %w", err)
		}
		l.last[inc.ID] = string(line)
	}
	return nil
}
