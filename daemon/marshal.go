package daemon

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// Marshal writes c in the file syntax ParseConfig reads; parsing the
// result gives c back.
func (c *Config) Marshal() []byte {
	root := &yaml.Node{Kind: yaml.MappingNode}
	add := func(m *yaml.Node, key string, v *yaml.Node) {
		m.Content = append(m.Content, str(key), v)
	}
	if len(c.Interfaces) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, ifc := range c.Interfaces {
			m := &yaml.Node{Kind: yaml.MappingNode}
			add(m, "name", str(ifc.Name))
			add(m, "link", str(ifc.Link))
			if ifc.MTU != 0 {
				add(m, "mtu", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(ifc.MTU)})
			}
			if !ifc.MAC.IsZero() {
				add(m, "mac", str(ifc.MAC.String()))
			}
			if len(ifc.Addresses) > 0 {
				as := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
				for _, a := range ifc.Addresses {
					as.Content = append(as.Content, str(a.String()))
				}
				add(m, "addresses", as)
			}
			seq.Content = append(seq.Content, m)
		}
		add(root, "interfaces", seq)
	}
	if len(c.Routes) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, r := range c.Routes {
			m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			to := r.To.String()
			if r.To.Bits() == 0 && r.To.Addr().Is4() {
				to = "default"
			} else if r.To.Bits() == 0 {
				to = "default6"
			}
			add(m, "to", str(to))
			add(m, "via", str(r.Via.String()))
			seq.Content = append(seq.Content, m)
		}
		add(root, "routes", seq)
	}
	if len(c.Sysctl) > 0 {
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, s := range c.Sysctl {
			add(m, s.Name, str(s.Value))
		}
		add(root, "sysctl", m)
	}
	if len(c.Services) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, s := range c.Services {
			m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			add(m, "type", str(s.Type))
			add(m, "listen", str(s.Listen()))
			if s.Root != "" {
				add(m, "root", str(s.Root))
			}
			seq.Content = append(seq.Content, m)
		}
		add(root, "services", seq)
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		panic("daemon: marshal: " + err.Error()) // nodes built above always encode
	}
	return out
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
