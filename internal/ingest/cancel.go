package ingest

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cancelGrace is how long a cancelled statement may take to stop on the server before the
// connection is dropped instead.
const cancelGrace = 10 * time.Second

// cancelOnServer makes cancelling ctx stop the statement that conn is running on the server,
// and returns the context to run conn's statements with.
//
// Why: on a cancelled context pgx just closes the connection, and PostgreSQL only notices
// that when it next talks to the client, so a long INSERT would run on to its end, holding
// the upload's lock, and a retried finalize would get "another finalize is running". Here the
// statements run on a context that ctx does not cancel; a cancel request makes the server stop
// the statement instead, the connection stays usable and the transaction is rolled back
// before the caller returns. Should the server not answer within cancelGrace, the returned
// context is cancelled too, and pgx drops the connection.
//
// The caller must call done when it is finished with conn. When done reports true, a cancel
// request was sent and may still arrive late: the caller must close conn, never reuse it.
func cancelOnServer(ctx context.Context, conn *pgxpool.Conn) (stmtCtx context.Context, done func() (cancelled bool)) {
	stmtCtx, stopStmts := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(cancelGrace, stopStmts)
		reqCtx, cancel := context.WithTimeout(stmtCtx, cancelGrace)
		defer cancel()
		if err := conn.Conn().PgConn().CancelRequest(reqCtx); err != nil {
			stopStmts() // the server is unreachable: drop the connection now
		}
	})
	return stmtCtx, func() bool {
		cancelled := !stop() // false: the AfterFunc has started
		stopStmts()
		return cancelled
	}
}
