// Package e2e is Coolpy7's black-box conformance suite: every test starts
// its own in-process broker on 127.0.0.1:0 and talks to it over real
// sockets, with third-party MQTT clients (paho.mqtt.golang for 3.1.1,
// paho.golang for 5.0), a hand-written raw client for bad input, and the
// mosquitto_pub/mosquitto_sub command-line tools.
//
// The tests are written against the MQTT 3.1.1 and 5.0 specifications, not
// against the implementation; comments cite the normative statements
// (e.g. [MQTT-3.1.2-22]) they check.
//
// Set E2E_BROKER_LOG=1 to see the broker's debug log on stderr.
package e2e
