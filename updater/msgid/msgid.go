// Package msgid holds the journald MESSAGE_IDs of the update daemon's key
// events. units/speedia-update.catalog documents each one; keep them in step.
package msgid

const (
	Staged               = "7e81b3c47f724669b9ebcad21db6aca5" // an update was staged into a new snapshot
	RebootScheduled      = "4bfe6def5aa14097884410127332fcb9" // a reboot into the staged snapshot was scheduled
	Rebooting            = "50f027d5d02e4ec89a81facde9685c3d" // the daemon is rebooting the host now
	Verified             = "a06055b05c28452085cdd1719333be38" // the new snapshot booted and passed its health checks
	RolledBack           = "1305b947f3eb445f898eb9c8b3839cf1" // the new snapshot failed; the host goes back to the last good one
	StageFailed          = "7f0ba8555af14f1eb06ef264e28bac06" // staging an update failed; nothing changed
	ConfigInvalid        = "e422ab370953427abece42d2708f0692" // the configuration is invalid; the last good one stays in force
	GaveUp               = "f9257d0ad3394ec3a3c1e836d1b80d12" // bounded attempts exhausted; the host stays on the good snapshot
	ContainersFailed     = "d26ac444005d465fb327fca1bf3df33f" // containers that ran before a reboot did not come back
	ContainerPatched     = "a439970ec102439d9548642985ba1bc8" // the packages inside a container were upgraded
	ContainerPatchFailed = "8c4763b1074c4230a38ba0bc734ef668" // a container's patch failed; its rollback point runs again
)
