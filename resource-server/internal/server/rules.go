package server

import (
	"errors"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/umawide/umawide/internal/uma"
	"github.com/umawide/umawide/resource-server/internal/protection"
	"github.com/umawide/umawide/resource-server/internal/rules"
)

// --- the owner's rules (issue 15): GET and PUT /incoming/{owner}/rules ---
//
// Only the owner, with the same checks as reading his Incoming (reader):
// another user gets 403 before anything is read or written. The rules live
// in Keycloak as the Incoming resource's attributes (package rules), where
// the claims-token policy applies them from the next grant on.

func (s *Server) getRules(c *gin.Context) {
	o, ok := s.readerOwner(c)
	if !ok {
		return
	}
	r, err := s.cfg.Rules.Get(c.Request.Context(), o.ResourceID)
	if err != nil {
		s.rulesFailed(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, r)
}

func (s *Server) putRules(c *gin.Context) {
	o, ok := s.readerOwner(c)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || mt != "application/json" {
		s.fail(c, uma.NewError(http.StatusUnsupportedMediaType, uma.ErrInvalidRequest, "the rules are sent as application/json"), "rules_content_type")
		return
	}
	r, err := rules.Parse(http.MaxBytesReader(c.Writer, c.Request.Body, rules.MaxBody+1))
	var fe *rules.FieldError
	if errors.As(err, &fe) {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "%s", fe.Error()), "rules_invalid")
		return
	}
	if err != nil {
		s.fail(c, uma.NewError(http.StatusBadRequest, uma.ErrInvalidRequest, "the body could not be read"), "rules_invalid")
		return
	}
	stored, err := s.cfg.Rules.Put(c.Request.Context(), rules.Change{
		Owner: c.Param("owner"), UserID: o.UserID, ResourceID: o.ResourceID, Via: "api",
	}, r)
	if err != nil {
		s.rulesFailed(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, stored)
}

// rulesFailed: Keycloak did not read or write the rules. Nothing was
// changed that the owner can see as changed.
func (s *Server) rulesFailed(c *gin.Context, err error) {
	if c.Request.Context().Err() != nil {
		s.fail(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "the request was canceled"), "canceled")
		return
	}
	s.cfg.Logger.Error("owner rules", "owner", c.Param("owner"), "err", err)
	if errors.Is(err, protection.ErrUnreachable) {
		c.Header("Warning", unreachableWarning)
		s.fail(c, uma.NewError(http.StatusServiceUnavailable, uma.ErrUnavailable, "the UMA authorization server cannot be reached"), "as_unreachable")
		return
	}
	s.fail(c, uma.NewError(http.StatusInternalServerError, uma.ErrServerError, "the rules could not be read or written"), "rules_failed")
}
