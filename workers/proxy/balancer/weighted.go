package balancer

// pickWeighted is nginx's smooth weighted round robin over the upstreams
// not in exclude that are available (or all of them when all is set):
// each adds its weight to its current value, the largest current value
// wins (the first on a tie) and gives back the sum of the weights. Over
// any run of picks with a stable set, each upstream's share is exact to
// within one pick, and picks of one upstream are spread out rather than
// bunched. Upstreams outside the set keep their current value.
func (p *Pool) pickWeighted(exclude []*Upstream, all bool) *Upstream {
	now := int64(-1)
	p.mu.Lock()
	best, total := -1, 0
	for i, u := range p.ups {
		if excluded(u, exclude) || !all && !p.available(u, &now) {
			continue
		}
		p.cur[i] += u.Weight
		total += u.Weight
		if best < 0 || p.cur[i] > p.cur[best] {
			best = i
		}
	}
	if best < 0 {
		p.mu.Unlock()
		return nil
	}
	p.cur[best] -= total
	p.mu.Unlock()
	return p.ups[best]
}
