// Package discovery finds devices on the local network with DNS-SD over
// mDNS: an Advertiser announces this device as a _peerdrop._tcp service,
// and a Browser keeps the live list of the others and reports each change
// as an Event (appeared, updated, gone).
package discovery
