package core

import (
	"errors"
)

// ErrBadInput matches (with errors.Is) every error the machine returns for
// input it refuses. Such an input emitted nothing and changed nothing.
var ErrBadInput = errors.New("lastseen: bad input")

// Reasons for refusing input that are the machine's own; the stanza package
// supplies the XML, size, JID and presence-type reasons (stanza.ErrMalformed,
// stanza.ErrRestricted, stanza.ErrTooLarge, stanza.ErrTooComplex,
// stanza.ErrNotPresence, stanza.ErrUnknownType, stanza.ErrInvalidJID).
var (
	// ErrNoFrom means a stanza from another server has no from address; the
	// host must verify and keep the sender (RFC 6120 §8.1.2.2).
	ErrNoFrom = errors.New("server stanza without from")
	// ErrNoTo means a probe or Last Activity query from another server has
	// no to address.
	ErrNoTo = errors.New("server probe or query without to")
	// ErrNotLocal means a probe or Last Activity query from another server
	// is addressed to a JID that is neither at a served domain nor a
	// component this machine hosts, or that a Last Activity query names a
	// resource of a JID the machine answers for, which the host routes to
	// that resource instead (RULES L6).
	ErrNotLocal = errors.New("probe or query to a JID this machine does not answer for")
	// ErrSession means a session JID is not a full JID at a served domain.
	ErrSession = errors.New("session JID must be a full JID at a served domain")
	// ErrNotDomain means up or down was given a JID that is not a bare
	// domain.
	ErrNotDomain = errors.New("up and down take a domain JID")
	// ErrNoFactStore means a roster, blocking or opt-out fact was given to a
	// machine whose Authorizer does not take facts (see FactStore).
	ErrNoFactStore = errors.New("the machine's Authorizer does not store facts")
	// ErrNoSubscriberLister means Up or Down was called on a machine whose
	// Authorizer cannot list an owner's subscribers (see SubscriberLister),
	// so the machine could not announce the domain (RULES S3). Nothing
	// changed.
	ErrNoSubscriberLister = errors.New("the machine's Authorizer cannot list subscribers")
	// ErrConfig means a Config or RateLimit is out of range.
	ErrConfig = errors.New("invalid configuration")
	// ErrTooManyEntities means tracking the input would exceed
	// Config.MaxEntities; nothing is evicted to make room.
	ErrTooManyEntities = errors.New("too many tracked entities")
	// ErrTooManyResources means a user already has Config.MaxResources
	// available resources.
	ErrTooManyResources = errors.New("too many available resources for one user")
)

// InputError is the error returned for refused input. It names the event
// and wraps the reason, so errors.Is works with both ErrBadInput and the
// specific reason, and errors.As reaches a *stanza.SyntaxError or
// *stanza.JIDError underneath.
type InputError struct {
	Event string // "client", "server", "close", "up", "down", "roster", "block", "hide", "limit"
	Err   error  // the reason
}

func (e *InputError) Error() string {
	return "lastseen: bad " + e.Event + " input: " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *InputError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBadInput) true.
func (e *InputError) Is(target error) bool { return target == ErrBadInput }

func bad(event string, err error) error { return &InputError{Event: event, Err: err} }

// detail wraps a sentinel with a sentence that helps whoever reads the log.
type detail struct {
	err error
	msg string
}

func (d *detail) Error() string { return d.err.Error() + ": " + d.msg }
func (d *detail) Unwrap() error { return d.err }

func withDetail(err error, msg string) error { return &detail{err: err, msg: msg} }
