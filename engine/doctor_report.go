package engine

import (
	"fmt"
	"strings"
)

// judge turns what was seen into problems, notes and advice; port is this
// device's handshake port.
func (r *Report) judge(port int) {
	r.Problems, r.Notes, r.Advice = nonNil(r.Problems), []string{}, []string{}
	multicastOK := true
	switch m := r.Multicast; {
	case m.Err != "":
		multicastOK = false
		r.Problems = append(r.Problems, "This machine cannot use mDNS (UDP port 5353): "+m.Err+".")
	case !m.Sent:
		multicastOK = false
		r.Problems = append(r.Problems, "mDNS queries cannot go out: a firewall on this machine drops multicast (UDP 5353 to 224.0.0.251 and ff02::fb).")
	case len(m.Heard) == 0:
		multicastOK = false
		r.Problems = append(r.Problems, "No other device's mDNS (multicast) was heard: the router or access point filters multicast, "+
			"a firewall drops UDP 5353, or no other device is on this network. ThePeerDrop then looks for known devices at their "+
			"last addresses and scans this subnet; a device on another subnet appears once it has been reached by its address.")
	}
	if !multicastOK {
		r.Advice = append(r.Advice, firewallAdvice("this machine", 0, 0, true)...)
	}
	if !r.Local.Receiving {
		r.Notes = append(r.Notes, fmt.Sprintf("This device is not receiving now (nothing answers on TCP %d here): other devices can send to it once ThePeerDrop runs with receiving on.", r.Local.TCPPort))
	}
	if t := r.Target; t != nil {
		r.judgeTarget(*t)
	}
}

func (r *Report) judgeTarget(t TargetReport) {
	who := t.Query
	if t.Name != "" {
		who = t.Name
	}
	switch {
	case !t.Found:
		r.Problems = append(r.Problems, sentence(t.Err))
	case !t.Handshake:
		r.Problems = append(r.Problems, sentence(t.Err))
		r.Advice = append(r.Advice, firewallAdvice(who, portOf(t.Address), 0, false)...)
	case !t.Connected:
		r.Problems = append(r.Problems, sentence(t.Err))
		udp := portOf(t.Address)
		if len(t.UDPPorts) == 1 {
			udp = t.UDPPorts[0]
		}
		r.Advice = append(r.Advice, firewallAdvice(who, 0, udp, false)...)
	}
	if t.Hidden {
		r.Notes = append(r.Notes, who+" is hidden (receive --hidden): it takes connections, but nearby devices do not list it.")
	}
}

// firewallAdvice lists the rules that let tcp, udp (0: none) and mDNS in,
// on where, for ufw, firewalld and Windows.
func firewallAdvice(where string, tcp, udp int, mdns bool) []string {
	var ufw, fwd, win []string
	if tcp > 0 {
		ufw = append(ufw, fmt.Sprintf("sudo ufw allow %d/tcp", tcp))
		fwd = append(fwd, fmt.Sprintf("--add-port=%d/tcp", tcp))
		win = append(win, fmt.Sprintf("New-NetFirewallRule -DisplayName ThePeerDrop-TCP -Direction Inbound -Protocol TCP -LocalPort %d -Action Allow", tcp))
	}
	var udpPorts []string
	if udp > 0 {
		ufw = append(ufw, fmt.Sprintf("sudo ufw allow %d/udp", udp))
		fwd = append(fwd, fmt.Sprintf("--add-port=%d/udp", udp))
		udpPorts = append(udpPorts, fmt.Sprint(udp))
	}
	if mdns {
		ufw = append(ufw, "sudo ufw allow 5353/udp")
		fwd = append(fwd, "--add-service=mdns")
		udpPorts = append(udpPorts, "5353")
	}
	if len(udpPorts) > 0 {
		win = append(win, "New-NetFirewallRule -DisplayName ThePeerDrop-UDP -Direction Inbound -Protocol UDP -LocalPort "+strings.Join(udpPorts, ",")+" -Action Allow")
	}
	if len(ufw) == 0 {
		return nil
	}
	return []string{
		fmt.Sprintf("On %s with ufw: %s", where, strings.Join(ufw, " && ")),
		fmt.Sprintf("On %s with firewalld: sudo firewall-cmd --permanent %s && sudo firewall-cmd --reload", where, strings.Join(fwd, " ")),
		fmt.Sprintf("On %s with Windows (PowerShell as administrator): %s", where, strings.Join(win, "; ")),
	}
}

// Text is the report for people, as `peerdrop doctor` prints it and the
// app shows it.
func (r Report) Text() string {
	var b strings.Builder
	b.WriteString("Network interfaces:\n")
	for _, i := range r.Interfaces {
		fmt.Fprintf(&b, "  %s: %s\n", i.Name, strings.Join(i.Addrs, ", "))
	}
	if len(r.Interfaces) == 0 {
		b.WriteString("  none\n")
	}
	m := r.Multicast
	fmt.Fprintf(&b, "Multicast (mDNS, UDP 5353): %s, %s\n", yesNo(m.Sent, "sent", "not sent"), heard(m.Heard))
	fmt.Fprintf(&b, "This device: %s on TCP %d; UDP %d %s\n", yesNo(r.Local.Receiving, "receiving", "not receiving"),
		r.Local.TCPPort, r.Local.UDPPort, yesNo(r.Local.UDPInUse, "in use", "free"))
	if t := r.Target; t != nil {
		fmt.Fprintf(&b, "%s: %s\n", t.Query, targetLine(*t))
	}
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		b.WriteString(title + "\n")
		for _, it := range items {
			fmt.Fprintf(&b, "  - %s\n", it)
		}
	}
	list("Problems:", r.Problems)
	list("Notes:", r.Notes)
	list("To let ThePeerDrop through a firewall:", r.Advice)
	if len(r.Problems) == 0 {
		b.WriteString("No problem found.\n")
	}
	return b.String()
}

func targetLine(t TargetReport) string {
	if !t.Found {
		return "not found"
	}
	parts := []string{"found at " + t.Address}
	parts = append(parts, yesNo(t.Handshake, "its handshake port (TCP) answers", "its handshake port (TCP) does not answer"))
	if t.Handshake {
		parts = append(parts, yesNo(t.Connected, "a connection opens (UDP passes)", "no connection opens (UDP is blocked)"))
	}
	return strings.Join(parts, "; ")
}

func heard(addrs []string) string {
	if len(addrs) == 0 {
		return "no other device heard"
	}
	return fmt.Sprintf("heard from %d other device(s): %s", len(addrs), strings.Join(addrs, ", "))
}

func yesNo(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

// sentence is s with a capital and a full stop, unless it ends in one.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// portOf is the port of HOST:PORT (0 when there is none).
func portOf(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0
	}
	var p int
	_, _ = fmt.Sscan(addr[i+1:], &p)
	return p
}
