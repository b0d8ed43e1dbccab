// Package discovery will advertise and browse _peerdrop._tcp over mDNS (next issue).
package discovery
