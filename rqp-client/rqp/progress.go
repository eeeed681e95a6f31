package rqp

import "time"

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
