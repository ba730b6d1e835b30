package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"

	"github.com/coolpy7/coolpy7/gateway"
)

// publish is POST /pub: the original's form (parameters in the query, the
// body is the payload) or, with Content-Type application/json, one
// message as {"topic","payload","qos","retain","encoding"}.
func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	isJSON := isJSONBody(r)
	q := query(r)
	clientID, m, err := gateway.ParseQuery(q, !isJSON)
	if err != nil {
		s.failGateway(w, err)
		return
	}
	if isJSON && (q.Has("topic") || q.Has("qos") || q.Has("retain")) {
		fail(w, http.StatusBadRequest, "with a JSON body, topic, qos and retain go in the body")
		return
	}
	// Credentials first, so that nobody unauthenticated makes the server
	// read a large body.
	id, err := s.authenticate(r, clientID)
	if err != nil {
		s.failGateway(w, err)
		return
	}
	limit := s.maxBody
	if isJSON {
		limit = limit*4/3 + 64<<10 // base64 and the JSON around it
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		s.failGateway(w, err)
		return
	}
	if isJSON {
		if m, err = gateway.DecodeJSON(body); err != nil {
			s.failGateway(w, err)
			return
		}
	} else {
		m.Payload = body
	}
	if err := s.pub.Publish(r.Context(), &id, m); err != nil {
		s.failGateway(w, err)
		return
	}
	writeOK(w)
}

// publishBatch is POST /pub/batch: a JSON array of messages, published in
// order once all of them are valid and allowed.
func (s *Server) publishBatch(w http.ResponseWriter, r *http.Request) {
	q := query(r)
	clientID := q.Get("clientid")
	if !isJSONBody(r) {
		fail(w, http.StatusUnsupportedMediaType, "a batch is a JSON array (Content-Type: application/json)")
		return
	}
	id, err := s.authenticate(r, clientID)
	if err != nil {
		s.failGateway(w, err)
		return
	}
	body, err := readBody(w, r, s.maxBody*4/3+64<<10)
	if err != nil {
		s.failGateway(w, err)
		return
	}
	msgs, err := gateway.DecodeBatch(body, s.maxBatch)
	if err != nil {
		s.failGateway(w, err)
		return
	}
	for i := range msgs {
		if err := s.pub.Check(&id, &msgs[i]); err != nil {
			s.failGateway(w, err)
			return
		}
	}
	for _, m := range msgs {
		if err := s.pub.Publish(r.Context(), &id, m); err != nil {
			s.failGateway(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, struct {
		OK        bool `json:"ok"`
		Published int  `json:"published"`
	}{true, len(msgs)})
}

func isJSONBody(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/json"
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &gateway.Error{Kind: gateway.TooLarge, Msg: "body larger than max_packet_size"}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &gateway.Error{Kind: gateway.TooLarge, Msg: "body larger than max_packet_size"}
	}
	if err != nil {
		return nil, &gateway.Error{Kind: gateway.BadRequest, Msg: "reading body: " + err.Error()}
	}
	return b, nil
}

func (s *Server) authenticate(r *http.Request, clientID string) (gateway.Identity, error) {
	cr, err := gateway.ParseBasic(r.Header.Get("Authorization"))
	if err != nil {
		return gateway.Identity{}, err
	}
	addr, _ := netip.ParseAddr(clientIP(r))
	return s.pub.Authenticate(r.Context(), cr, clientID, addr)
}

// failGateway answers a gateway error with its status.
func (s *Server) failGateway(w http.ResponseWriter, err error) {
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	code := http.StatusBadRequest
	switch ge.Kind {
	case gateway.Unauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
		code = http.StatusUnauthorized
	case gateway.Forbidden:
		code = http.StatusForbidden
	case gateway.TooLarge:
		code = http.StatusRequestEntityTooLarge
	case gateway.Unavailable:
		code = http.StatusServiceUnavailable
	}
	fail(w, code, ge.Msg)
}
