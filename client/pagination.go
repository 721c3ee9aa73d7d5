package client

import (
	"context"
	"errors"
	"iter"
)

// AllCustomers walks every customer the app sees, page by page (o.Limit
// per page, from o.Cursor), fetching the next page only when the loop gets
// there. An error ends the walk after being yielded once:
//
//	for cus, err := range c.AllCustomers(ctx, client.ListOptions{}) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (c *Client) AllCustomers(ctx context.Context, o ListOptions) iter.Seq2[Customer, error] {
	return walk(o.Cursor, func(cursor string) (*Page[Customer], error) {
		o := o // the sequence may be ranged over more than once
		o.Cursor = cursor
		return c.Customers(ctx, o)
	})
}

// AllAccounts walks every account the app sees (of one customer if
// f.CustomerID is set), page by page, as AllCustomers does.
func (c *Client) AllAccounts(ctx context.Context, f AccountFilter) iter.Seq2[Account, error] {
	return walk(f.Cursor, func(cursor string) (*Page[Account], error) {
		f := f
		f.Cursor = cursor
		return c.Accounts(ctx, f)
	})
}

// AllTransactions walks an account's transactions in f's range, newest
// first, page by page, as AllCustomers does.
func (c *Client) AllTransactions(ctx context.Context, accountID string, f TransactionFilter) iter.Seq2[Transaction, error] {
	return walk(f.Cursor, func(cursor string) (*Page[Transaction], error) {
		f := f
		f.Cursor = cursor
		return c.Transactions(ctx, accountID, f)
	})
}

// errCursorLoop stops a walk that the platform would send round in circles.
var errCursorLoop = errors.New("causeway: the platform returned the same next_cursor twice")

// walk yields every item of the pages fetch returns, following next_cursor
// from cursor until it is empty.
func walk[T any](cursor string, fetch func(cursor string) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			page, err := fetch(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, v := range page.Data {
				if !yield(v, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			if page.NextCursor == cursor {
				var zero T
				yield(zero, errCursorLoop)
				return
			}
			cursor = page.NextCursor
		}
	}
}
