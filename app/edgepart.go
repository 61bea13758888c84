package app

import (
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
)

// EdgePart returns the Part of an edge that needs nothing but the shared
// plumbing plus the routes routes adds (routes may be nil).
func EdgePart(name, summary string, port func(*config.Config) (string, int),
	routes func(*edge.Server, *Deps) ([]Component, error)) Part {
	return Part{
		Name: name, Kind: KindEdge, Summary: summary, Port: port,
		Build: func(d *Deps) ([]Component, error) {
			s := edge.New(d.EdgeOptions(name))
			comps := []Component{s}
			if routes != nil {
				more, err := routes(s, d)
				if err != nil {
					return nil, err
				}
				comps = append(comps, more...)
			}
			return comps, nil
		},
	}
}
