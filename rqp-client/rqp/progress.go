package rqp

import (
	"io"
	"time"
)

// The steps of docs/PROTOCOL.md, numbered as the seed's arrows: each
// request the client sends (odd) and the answer it gets (even). The ticket
// digest (5.1) is part of step 5.
const (
	StepRequest             = 1  // POST the data to the Incoming without a token
	StepChallenge           = 2  // 401 with the UMA permission ticket
	StepAccessToken         = 3  // access token request for the Claims Provider (AuthN server)
	StepAccessTokenReturned = 4  // the access token (or the one kept from an earlier push)
	StepClaimsRequest       = 5  // ticket_digest (5.1), POST /claims/token at the Claims Provider
	StepClaimsToken         = 6  // the claims token received and checked
	StepGrant               = 7  // uma-ticket grant at the owner's AS with the pushed claims
	StepRPT                 = 8  // the RPT received
	StepPost                = 9  // POST the data again with the RPT
	StepCreated             = 10 // 201 Created and the receipt
	NumSteps                = 10
	stepBeforeTheFlow       = 0
	stepNameBeforeFlow      = "prepare"
)

var stepNames = [...]string{
	stepBeforeTheFlow:       stepNameBeforeFlow,
	StepRequest:             "request without token",
	StepChallenge:           "UMA challenge",
	StepAccessToken:         "access token request",
	StepAccessTokenReturned: "access token",
	StepClaimsRequest:       "claims token request",
	StepClaimsToken:         "claims token",
	StepGrant:               "UMA grant",
	StepRPT:                 "RPT",
	StepPost:                "POST with RPT",
	StepCreated:             "created",
}

// StepName is a step's short name ("UMA grant" for 7).
func StepName(step int) string {
	if step >= 0 && step < len(stepNames) {
		return stepNames[step]
	}
	return "unknown step"
}

// Event reports one finished step to Config.Progress.
type Event struct {
	// Attempt is 1, or 2 after the flow started over with a fresh ticket.
	Attempt int
	// Step number (1-10) and its name.
	Step int
	Name string
	// OK is false for the step that failed (the last event of a failed
	// attempt).
	OK bool
	// Status is what the step ended with, short: "401 Unauthorized",
	// "200 OK", "computed", "403 access_denied".
	Status string
	// Duration of the step (the HTTP exchange, or the local work).
	Duration time.Duration
	// Detail is a one-line description for verbose output. It never holds a
	// token or a secret: tokens appear only as their length.
	Detail string
	// Err is the failure when OK is false.
	Err error
	// Retry is set on the failed step's event when the flow starts over with
	// a fresh ticket after it.
	Retry bool
}

// Phase is what a pass over the content is for.
type Phase int

const (
	// PhaseHash reads the content to compute content_sha256, before step 1.
	PhaseHash Phase = iota + 1
	// PhaseUpload sends the content as the body of step 1 or step 9.
	PhaseUpload
)

func (p Phase) String() string {
	switch p {
	case PhaseHash:
		return "hashing"
	case PhaseUpload:
		return "upload"
	}
	return "unknown phase"
}

// Transfer reports how far one pass over the content has come, to
// Request.Transfer: hashing (once per push) and each upload separately.
type Transfer struct {
	Phase Phase
	// Step is 1 or 9 for an upload, 0 for hashing.
	Step int
	// Attempt is 1, or 2 after the flow started over with a fresh ticket.
	Attempt int
	// Done of Total content bytes read for this pass so far.
	Done, Total int64
	// Elapsed since the pass started.
	Elapsed time.Duration
	// Final is set on the pass's last report: every byte read. A pass that
	// fails or that the server cuts short (step 1 normally sends nothing,
	// thanks to Expect: 100-continue) has no final report; the step's Event
	// follows.
	Final bool
}

// transferEvery is the least number of bytes between two Transfer reports
// of one pass (and the final one): a report per read would cost more than
// the read for small buffers.
const transferEvery = 1 << 20

// transferMeter counts the bytes read through it and reports them to fn
// every transferEvery bytes and at the end. It is used from one goroutine
// at a time (the hashing loop, or the transport writing the body).
type transferMeter struct {
	fn      func(Transfer)
	t       Transfer
	start   time.Time
	started bool
	last    int64
}

func newTransferMeter(fn func(Transfer), phase Phase, step, attempt int, total int64) *transferMeter {
	if fn == nil {
		return nil
	}
	return &transferMeter{fn: fn, t: Transfer{Phase: phase, Step: step, Attempt: attempt, Total: total}}
}

// add counts n more bytes; nil-safe.
func (m *transferMeter) add(n int) {
	if m == nil {
		return
	}
	now := time.Now()
	if !m.started {
		m.start, m.started = now, true
	}
	m.t.Done += int64(n)
	if m.t.Final || (m.t.Done-m.last < transferEvery && m.t.Done < m.t.Total) {
		return
	}
	m.last = m.t.Done
	m.t.Elapsed = now.Sub(m.start)
	m.t.Final = m.t.Done >= m.t.Total
	m.fn(m.t)
}

// meteredReader reports what is read through it to a transferMeter.
type meteredReader struct {
	r io.Reader
	m *transferMeter
}

func (r meteredReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.m.add(n)
	return n, err
}
