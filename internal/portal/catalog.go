package portal

import "net/http"

// eventsPage is the event catalog: every type with what it means, the
// JSON Schema of its data and a whole example CloudEvent.
func (p *Portal) eventsPage(w http.ResponseWriter, r *http.Request, s *devSession) error {
	types, err := p.d.Events.Catalog(r.Context())
	if err != nil {
		return err
	}
	v := s.view("Event catalog", "events")
	v.D = groupTypes(types)
	p.render(w, r, http.StatusOK, "events", v)
	return nil
}
