// Package httpsig signs and verifies HTTP requests with HTTP Message
// Signatures (RFC 9421), and computes and checks the Content-Digest of a
// body (RFC 9530, sha-256). The gateway signs what it proxies to the
// bank's upstream APIs with it; an upstream verifies the same way.
//
// It covers what a request needs: the derived components @method,
// @target-uri, @authority, @scheme, @request-target, @path and @query,
// and header fields by name. Component parameters (sf, key, bs, req,
// name) are not supported; a signature that uses them does not verify.
// The structured fields themselves are read and written with
// github.com/dunglas/httpsfv.
package httpsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"
)

// Algorithms, as named in the HTTP Signature Algorithms registry (RFC 9421
// section 6.2.2).
const (
	AlgHMACSHA256 = "hmac-sha256"
	AlgEd25519    = "ed25519"
)

// Header fields a signature travels in.
const (
	HeaderSignatureInput = "Signature-Input"
	HeaderSignature      = "Signature"
	HeaderContentDigest  = "Content-Digest"
)

// Key signs or verifies with one algorithm under one key id.
type Key struct {
	// ID is the keyid parameter of the signatures the key makes or checks.
	ID string
	// Alg is AlgHMACSHA256 or AlgEd25519.
	Alg string

	secret  []byte
	private ed25519.PrivateKey
	public  ed25519.PublicKey
}

// HMACKey is a shared secret for hmac-sha256, which both signs and
// verifies.
func HMACKey(id string, secret []byte) *Key {
	return &Key{ID: id, Alg: AlgHMACSHA256, secret: secret}
}

// Ed25519Key is an Ed25519 private key, which signs and verifies.
func Ed25519Key(id string, private ed25519.PrivateKey) *Key {
	return &Key{ID: id, Alg: AlgEd25519, private: private, public: private.Public().(ed25519.PublicKey)}
}

// Ed25519PublicKey is an Ed25519 public key, which verifies only.
func Ed25519PublicKey(id string, public ed25519.PublicKey) *Key {
	return &Key{ID: id, Alg: AlgEd25519, public: public}
}

func (k *Key) sign(base []byte) ([]byte, error) {
	switch {
	case k.Alg == AlgHMACSHA256 && len(k.secret) > 0:
		mac := hmac.New(sha256.New, k.secret)
		mac.Write(base)
		return mac.Sum(nil), nil
	case k.Alg == AlgEd25519 && k.private != nil:
		return ed25519.Sign(k.private, base), nil
	}
	return nil, fmt.Errorf("httpsig: key %q cannot sign with %q", k.ID, k.Alg)
}

func (k *Key) verify(base, sig []byte) bool {
	switch {
	case k.Alg == AlgHMACSHA256 && len(k.secret) > 0:
		want, _ := k.sign(base)
		return hmac.Equal(sig, want)
	case k.Alg == AlgEd25519 && len(k.public) == ed25519.PublicKeySize:
		return ed25519.Verify(k.public, base, sig)
	}
	return false
}

// Params are what a signature covers and says about itself: the
// components in order, then the signature parameters. A zero Created or
// Expires, and an empty Nonce, KeyID, Alg or Tag, is left out.
type Params struct {
	Components []string
	Created    time.Time
	Expires    time.Time
	Nonce      string
	KeyID      string
	Alg        string
	Tag        string
}

// innerList is p as the value of @signature-params and of a
// Signature-Input member; parameters come in the order the RFC's examples
// use.
func (p Params) innerList() httpsfv.InnerList {
	il := httpsfv.InnerList{Params: httpsfv.NewParams()}
	for _, c := range p.Components {
		il.Items = append(il.Items, httpsfv.NewItem(c))
	}
	if !p.Created.IsZero() {
		il.Params.Add("created", p.Created.Unix())
	}
	if !p.Expires.IsZero() {
		il.Params.Add("expires", p.Expires.Unix())
	}
	for _, kv := range [][2]string{{"nonce", p.Nonce}, {"keyid", p.KeyID}, {"alg", p.Alg}, {"tag", p.Tag}} {
		if kv[1] != "" {
			il.Params.Add(kv[0], kv[1])
		}
	}
	return il
}

// paramsOf reads the Params of a Signature-Input member.
func paramsOf(il httpsfv.InnerList) (Params, error) {
	var p Params
	for _, it := range il.Items {
		name, ok := it.Value.(string)
		if !ok || len(it.Params.Names()) > 0 {
			return p, errors.New("httpsig: a covered component is not a plain string (component parameters are not supported)")
		}
		if slices.Contains(p.Components, name) {
			return p, fmt.Errorf("httpsig: component %q is covered twice", name)
		}
		p.Components = append(p.Components, name)
	}
	for _, name := range il.Params.Names() {
		v, _ := il.Params.Get(name)
		switch name {
		case "created", "expires":
			n, ok := v.(int64)
			if !ok {
				return p, fmt.Errorf("httpsig: %s is not an integer", name)
			}
			if name == "created" {
				p.Created = time.Unix(n, 0)
			} else {
				p.Expires = time.Unix(n, 0)
			}
		case "nonce", "keyid", "alg", "tag":
			s, ok := v.(string)
			if !ok {
				return p, fmt.Errorf("httpsig: %s is not a string", name)
			}
			switch name {
			case "nonce":
				p.Nonce = s
			case "keyid":
				p.KeyID = s
			case "alg":
				p.Alg = s
			case "tag":
				p.Tag = s
			}
		default:
			return p, fmt.Errorf("httpsig: unknown signature parameter %q", name)
		}
	}
	return p, nil
}

// ContentDigest is the Content-Digest field value (RFC 9530) of body,
// with sha-256.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// CheckContentDigest reports whether the Content-Digest field value v
// carries a sha-256 digest, and that it is the digest of body. Other
// algorithms in v are ignored; one of them alone is not enough.
func CheckContentDigest(v []string, body []byte) error {
	d, err := httpsfv.UnmarshalDictionary(v)
	if err != nil {
		return fmt.Errorf("httpsig: Content-Digest: %w", err)
	}
	m, ok := d.Get("sha-256")
	if !ok {
		return errors.New("httpsig: Content-Digest has no sha-256 digest")
	}
	it, ok := m.(httpsfv.Item)
	got, isBytes := it.Value.([]byte)
	sum := sha256.Sum256(body)
	if !ok || !isBytes || subtle.ConstantTimeCompare(got, sum[:]) != 1 {
		return errors.New("httpsig: Content-Digest does not match the body")
	}
	return nil
}

// TargetURI is the target URI of r (the @target-uri component): r.URL
// for a request a client sends, and for one a server received, the scheme
// of its connection, its Host and its request-target as sent. A server
// behind a TLS terminator or a proxy that rewrites the Host passes the
// URI its clients used to Verify instead.
func TargetURI(r *http.Request) string {
	if r.URL.IsAbs() {
		host := r.Host
		if host == "" {
			host = r.URL.Host
		}
		return r.URL.Scheme + "://" + host + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	return scheme + "://" + r.Host + target
}

// Base returns the signature base (RFC 9421 section 2.5) of r for p, with
// targetURI as its target URI (TargetURI(r) if empty). A covered field r
// lacks is an error.
func Base(r *http.Request, targetURI string, p Params) ([]byte, error) {
	if targetURI == "" {
		targetURI = TargetURI(r)
	}
	u, err := url.Parse(targetURI)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fmt.Errorf("httpsig: target URI %q is not absolute", targetURI)
	}
	var b bytes.Buffer
	for _, c := range p.Components {
		v, err := componentValue(r, u, targetURI, c)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("httpsig: component %q has a line break", c)
		}
		id, err := httpsfv.Marshal(httpsfv.NewItem(c))
		if err != nil {
			return nil, fmt.Errorf("httpsig: component %q: %w", c, err)
		}
		fmt.Fprintf(&b, "%s: %s\n", id, v)
	}
	params, err := httpsfv.Marshal(p.innerList())
	if err != nil {
		return nil, fmt.Errorf("httpsig: signature parameters: %w", err)
	}
	fmt.Fprintf(&b, "%q: %s", "@signature-params", params)
	return b.Bytes(), nil
}

// componentValue is the value of the component c of r, whose target URI
// is u (raw as written).
func componentValue(r *http.Request, u *url.URL, raw, c string) (string, error) {
	if c != strings.ToLower(c) || c == "" {
		return "", fmt.Errorf("httpsig: component %q is not lower case", c)
	}
	switch c {
	case "@method":
		return r.Method, nil
	case "@target-uri":
		return raw, nil
	case "@authority":
		return authority(u), nil
	case "@scheme":
		return strings.ToLower(u.Scheme), nil
	case "@request-target":
		return u.RequestURI(), nil
	case "@path":
		if p := u.EscapedPath(); p != "" {
			return p, nil
		}
		return "/", nil
	case "@query":
		return "?" + u.RawQuery, nil
	}
	if strings.HasPrefix(c, "@") {
		return "", fmt.Errorf("httpsig: derived component %q is not supported", c)
	}
	lines := r.Header.Values(c)
	if len(lines) == 0 {
		return "", fmt.Errorf("httpsig: the covered field %q is missing", c)
	}
	for i, l := range lines {
		lines[i] = strings.Trim(l, " \t")
	}
	return strings.Join(lines, ", "), nil
}

// authority is u's host in lower case, without the scheme's default port
// (RFC 9421 section 2.2.3).
func authority(u *url.URL) string {
	host := strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil &&
		(port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

// Sign computes the signature of r for p with k and adds it under label to
// r's Signature-Input and Signature fields. p.KeyID and p.Alg are set from
// k when empty; targetURI is as for Base.
func Sign(r *http.Request, label, targetURI string, p Params, k *Key) error {
	if p.KeyID == "" {
		p.KeyID = k.ID
	}
	base, err := Base(r, targetURI, p)
	if err != nil {
		return err
	}
	sig, err := k.sign(base)
	if err != nil {
		return err
	}
	input, err := httpsfv.Marshal(dictionary(label, p.innerList()))
	if err != nil {
		return err
	}
	value, err := httpsfv.Marshal(dictionary(label, httpsfv.NewItem(sig)))
	if err != nil {
		return err
	}
	r.Header.Add(HeaderSignatureInput, input)
	r.Header.Add(HeaderSignature, value)
	return nil
}

func dictionary(label string, m httpsfv.Member) *httpsfv.Dictionary {
	d := httpsfv.NewDictionary()
	d.Add(label, m)
	return d
}

// ErrNoSignature is what Verify returns for a request without the signature
// it looks for.
var ErrNoSignature = errors.New("httpsig: no signature")

// Verification says which signature Verify checks and what it must cover.
type Verification struct {
	// Label is the signature's label in Signature-Input and Signature.
	Label string
	// Key returns the key for a signature's keyid and alg, or an error if
	// there is none.
	Key func(keyID, alg string) (*Key, error)
	// Required are the components the signature must cover. When they
	// include "content-digest", Verify reads the body and checks its
	// digest too.
	Required []string
	// Tag, when set, is the tag parameter the signature must carry.
	Tag string
	// MaxAge, when set, refuses a signature created longer ago than this
	// (or more than a minute in the future); Now is the clock, time.Now
	// if nil. An expires parameter in the past always fails.
	MaxAge time.Duration
	Now    func() time.Time
	// TargetURI is the URI the request was sent to, when TargetURI(r)
	// would not know it (see TargetURI).
	TargetURI string
}

// Verify checks the signature v.Label of r, and returns its parameters.
// When the signature covers content-digest, it reads r's body, checks its
// sha-256 digest, and puts the body back for the handler.
func Verify(r *http.Request, v Verification) (Params, error) {
	inputs, err := httpsfv.UnmarshalDictionary(r.Header.Values(HeaderSignatureInput))
	if err != nil {
		return Params{}, fmt.Errorf("httpsig: Signature-Input: %w", err)
	}
	sigs, err := httpsfv.UnmarshalDictionary(r.Header.Values(HeaderSignature))
	if err != nil {
		return Params{}, fmt.Errorf("httpsig: Signature: %w", err)
	}
	in, ok1 := inputs.Get(v.Label)
	sm, ok2 := sigs.Get(v.Label)
	if !ok1 || !ok2 {
		return Params{}, ErrNoSignature
	}
	il, ok := in.(httpsfv.InnerList)
	if !ok {
		return Params{}, errors.New("httpsig: the Signature-Input member is not an inner list")
	}
	item, ok := sm.(httpsfv.Item)
	sig, isBytes := item.Value.([]byte)
	if !ok || !isBytes {
		return Params{}, errors.New("httpsig: the Signature member is not a byte sequence")
	}
	p, err := paramsOf(il)
	if err != nil {
		return p, err
	}
	for _, c := range v.Required {
		if !slices.Contains(p.Components, c) {
			return p, fmt.Errorf("httpsig: the signature does not cover %q", c)
		}
	}
	if v.Tag != "" && p.Tag != v.Tag {
		return p, fmt.Errorf("httpsig: the signature's tag is %q, not %q", p.Tag, v.Tag)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if !p.Expires.IsZero() && now().After(p.Expires) {
		return p, errors.New("httpsig: the signature has expired")
	}
	if v.MaxAge > 0 {
		if p.Created.IsZero() {
			return p, errors.New("httpsig: the signature has no created time")
		}
		if age := now().Sub(p.Created); age > v.MaxAge || age < -time.Minute {
			return p, fmt.Errorf("httpsig: the signature was created %v ago, outside the %v allowed", age.Round(time.Second), v.MaxAge)
		}
	}
	k, err := v.Key(p.KeyID, p.Alg)
	if err != nil {
		return p, err
	}
	if p.Alg != "" && p.Alg != k.Alg {
		return p, fmt.Errorf("httpsig: the signature's alg %q is not the key's %q", p.Alg, k.Alg)
	}
	base, err := Base(r, v.TargetURI, p)
	if err != nil {
		return p, err
	}
	if !k.verify(base, sig) {
		return p, errors.New("httpsig: the signature does not verify")
	}
	if slices.Contains(p.Components, "content-digest") {
		body, err := readBody(r)
		if err != nil {
			return p, err
		}
		if err := CheckContentDigest(r.Header.Values(HeaderContentDigest), body); err != nil {
			return p, err
		}
	}
	return p, nil
}

// readBody reads r's body and puts it back.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("httpsig: reading the body: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}
