package client

import (
	"context"
	"fmt"

	"github.com/godbus/dbus/v5"
)

// PhaseEvent is one PhaseChanged signal.
type PhaseEvent struct {
	Phase  string `json:"phase"`
	Detail string `json:"detail,omitempty"`
}

// signalBuffer is large so that godbus's default handler delivers straight
// into the channel, in order, from its reader goroutine: a full channel
// makes it fall back to one goroutine per signal, which loses the order.
const signalBuffer = 1024

// subscribe passes the daemon's signal member to handle, in order, on a
// goroutine of its own until stop is called. stop returns after every
// signal that arrived before it has been handled.
func (c *Client) subscribe(ctx context.Context, member string, handle func(*dbus.Signal)) (stop func(), err error) {
	rule := []dbus.MatchOption{
		dbus.WithMatchSender(BusName),
		dbus.WithMatchObjectPath(ObjectPath),
		dbus.WithMatchInterface(Interface),
		dbus.WithMatchMember(member),
	}
	if err := c.conn.AddMatchSignalContext(ctx, rule...); err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", member, mapError(err))
	}
	ch := make(chan *dbus.Signal, signalBuffer)
	c.conn.Signal(ch)
	name := Interface + "." + member
	quit, finished := make(chan struct{}), make(chan struct{})
	take := func(s *dbus.Signal) {
		// The channel gets every signal of the connection's match rules.
		if s.Path == ObjectPath && s.Name == name {
			handle(s)
		}
	}
	go func() {
		defer close(finished)
		for {
			select {
			case s, ok := <-ch:
				if !ok { // connection closed
					return
				}
				take(s)
			case <-quit:
				for { // drain what was delivered before RemoveSignal
					select {
					case s, ok := <-ch:
						if !ok {
							return
						}
						take(s)
					default:
						return
					}
				}
			}
		}
	}()
	return func() {
		// Signals that came before the reply are in ch by now: the reader
		// goroutine delivers them before it hands over the reply.
		c.conn.RemoveSignal(ch)
		close(quit)
		<-finished
		// Best effort: a stale match rule only costs bus traffic, and it
		// goes with the connection.
		_ = c.conn.RemoveMatchSignalContext(context.WithoutCancel(ctx), rule...)
	}, nil
}

// WatchPhase sends each PhaseChanged signal until ctx is done or the
// connection closes; then it closes the channel.
func (c *Client) WatchPhase(ctx context.Context) (<-chan PhaseEvent, error) {
	out := make(chan PhaseEvent, 16)
	events := make(chan PhaseEvent, signalBuffer)
	stop, err := c.subscribe(ctx, "PhaseChanged", func(s *dbus.Signal) {
		var ev PhaseEvent
		if dbus.Store(s.Body, &ev.Phase, &ev.Detail) == nil {
			select {
			case events <- ev:
			default: // a reader this far behind has lost track anyway
			}
		}
	})
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(out)
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.conn.Context().Done():
				return
			case ev := <-events:
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
