package engine

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReportJudge(t *testing.T) {
	r := Report{
		Interfaces: []InterfaceAddrs{{Name: "eth0", Addrs: []string{"10.0.0.1"}}},
		Multicast:  MulticastReport{Sent: true, Looped: true, Heard: []string{}},
		Local:      LocalPorts{TCPPort: 53318, UDPPort: 53318, Receiving: true, UDPInUse: true},
		Target: &TargetReport{Query: "Bob", Name: "Bob", Address: "10.0.0.2:53318", Found: true, Handshake: true,
			UDPPorts: []int{53318}, Err: "bob answered, but no connection could be set up: UDP is blocked"},
	}
	r.judge(53318)
	assert.Len(t, r.Problems, 2)
	assert.Contains(t, r.Problems[0], "No other device's mDNS (multicast) was heard")
	assert.Equal(t, "Bob answered, but no connection could be set up: UDP is blocked.", r.Problems[1])
	assert.Empty(t, r.Notes, "receiving")
	assert.Contains(t, r.Advice, "On this machine with ufw: sudo ufw allow 5353/udp")
	assert.Contains(t, r.Advice, "On Bob with ufw: sudo ufw allow 53318/udp")
	assert.Contains(t, r.Advice, "On Bob with firewalld: sudo firewall-cmd --permanent --add-port=53318/udp && sudo firewall-cmd --reload")
	assert.Contains(t, r.Advice, "On Bob with Windows (PowerShell as administrator): New-NetFirewallRule -DisplayName ThePeerDrop-UDP -Direction Inbound -Protocol UDP -LocalPort 53318 -Action Allow")

	text := r.Text()
	assert.Contains(t, text, "eth0: 10.0.0.1")
	assert.Contains(t, text, "Multicast (mDNS, UDP 5353): sent, no other device heard")
	assert.Contains(t, text, "This device: receiving on TCP 53318; UDP 53318 in use")
	assert.Contains(t, text, "Bob: found at 10.0.0.2:53318; its handshake port (TCP) answers; no connection opens (UDP is blocked)")
	assert.Contains(t, text, "Problems:\n  - No other device's mDNS")
	assert.NotContains(t, text, "No problem found.")
}

func TestReportAllWell(t *testing.T) {
	r := Report{
		Multicast: MulticastReport{Sent: true, Heard: []string{"10.0.0.2"}},
		Local:     LocalPorts{TCPPort: 53318, UDPPort: 53318},
		Target:    &TargetReport{Query: "10.0.0.2:53318", Address: "10.0.0.2:53318", Found: true, Handshake: true, Connected: true},
	}
	r.judge(53318)
	assert.Empty(t, r.Problems)
	assert.Empty(t, r.Advice)
	assert.Len(t, r.Notes, 1, "not receiving here")
	assert.Contains(t, r.Text(), "heard from 1 other device(s): 10.0.0.2")
	assert.Contains(t, r.Text(), "No problem found.")
}

func TestSentence(t *testing.T) {
	assert.Equal(t, "Could not reach Bob: is it receiving?", sentence("could not reach Bob: is it receiving?"))
	assert.Equal(t, "UDP is blocked.", sentence("UDP is blocked"))
	assert.Empty(t, sentence(""))
}
