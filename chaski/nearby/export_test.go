package nearby

import "net"

// BuildResponse builds an mDNS announcement (for the flood test's fakes).
func BuildResponse(r Record, ip net.IP, port int, ttl uint32) ([]byte, error) {
	return buildResponse(r, ip, port, ttl)
}
