package server

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	refusals *prometheus.CounterVec
	stored   prometheus.Counter
	bytes    prometheus.Counter
	tickets  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "umawide_rs_refusals_total", Help: "Requests refused, by reason.",
		}, []string{"reason"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umawide_rs_messages_stored_total", Help: "Messages stored (201 sent).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umawide_rs_message_bytes_stored_total", Help: "Bytes of message bodies stored.",
		}),
		tickets: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "umawide_rs_uma_challenges_total", Help: "401 UMA challenges sent with a permission ticket.",
		}),
	}
	reg.MustRegister(m.refusals, m.stored, m.bytes, m.tickets)
	return m
}
