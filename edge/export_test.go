package edge

// RewriteProtocolError is rewriteProtocolError, for the fuzz test.
var RewriteProtocolError = rewriteProtocolError
