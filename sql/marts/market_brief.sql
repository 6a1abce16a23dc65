-- market_brief
-- Grain: one row per trade_date (every session with technicals).
-- Depends on: marts.technicals_daily, marts.market_moves, marts.market_moves_cohorts,
--     marts.support_levels, marts.putcall_sentiment, marts.cohort_sma_distance,
--     marts.valuation_cohorts, marts.options_sentiment, marts.fear_greed_daily
-- Materialized: incremental by trade_date
-- Lookback: 0 sessions
--
-- The morning's questions in one row, each answered from the mart that owns it (no figure is
-- recomputed here, so the brief always agrees with the detail tables). Every input is read for
-- the same date only: a reading missing that day is NULL, never yesterday's. Which tickers it
-- reports is set by brief_index_tickers(), brief_focus_tickers() and brief_mover_count() in
-- sql/macros.sql. Lists keep the macros' order; movers are ordered by dollar change. Every
-- aggregate comes with the counts it covers (market value change of how many of how many
-- stocks and their share of market cap, the P/Es and P/S medians over how many stocks, how many
-- of the largest names had a market cap), so the brief never calls one name "the universe".

with sessions as (
    select distinct trade_date
    from marts.technicals_daily
    where trade_date >= $input_start_date
),

index_rows as (
    select
        technicals.trade_date,
        list(
            {
                'ticker': technicals.ticker,
                'close': technicals.close,
                'return_1d_pct': technicals.return_1d_pct,
                'sigma_move': moves.sigma_move
            }
            order by list_position(brief_index_tickers(), technicals.ticker)
        ) as index_moves
    from marts.technicals_daily as technicals
    left join marts.market_moves as moves
        on
            technicals.ticker = moves.ticker
            and technicals.trade_date = moves.trade_date
    where
        technicals.trade_date >= $input_start_date
        and list_contains(brief_index_tickers(), technicals.ticker)
    group by technicals.trade_date
),

movers as (
    select
        trade_date,
        list(
            {
                'ticker': ticker,
                'return_1d_pct': return_1d_pct,
                'market_cap_change_usd': market_cap_change_usd
            }
            order by loser_rank
        ) filter (where loser_rank <= brief_mover_count()) as biggest_losers,
        list(
            {
                'ticker': ticker,
                'return_1d_pct': return_1d_pct,
                'market_cap_change_usd': market_cap_change_usd
            }
            order by gainer_rank
        ) filter (where gainer_rank <= brief_mover_count()) as biggest_gainers
    from marts.market_moves
    where trade_date >= $input_start_date
    group by trade_date
),

cohort_moves as (
    select
        trade_date,
        max(total_market_cap_change_usd) filter (where cohort = 'all') as market_cap_change_usd,
        max(cohort_return_pct) filter (where cohort = 'all') as market_cap_return_pct,
        max(n_stocks) filter (where cohort = 'all') as market_cap_n_stocks,
        max(n_members) filter (where cohort = 'all') as market_cap_n_members,
        max(n_without_market_cap) filter (where cohort = 'all') as market_cap_n_without,
        max(market_cap_coverage_pct) filter (where cohort = 'all') as market_cap_coverage_pct,
        max(total_market_cap_change_usd) filter (where cohort = 'ai') as ai_market_cap_change_usd,
        max(n_members) filter (where cohort = 'ai') as ai_market_cap_n_members,
        max(n_stocks) filter (where cohort = 'ai') as ai_market_cap_n_stocks,
        max(total_market_cap_change_usd) filter (where cohort = 'non_ai')
            as non_ai_market_cap_change_usd,
        max(n_members) filter (where cohort = 'non_ai') as non_ai_market_cap_n_members,
        max(n_stocks) filter (where cohort = 'non_ai') as non_ai_market_cap_n_stocks,
        max(n_k_sigma_moves) filter (where cohort = 'all') as n_k_sigma_moves,
        max(n_with_sigma) filter (where cohort = 'all') as n_with_sigma
    from marts.market_moves_cohorts
    where trade_date >= $input_start_date
    group by trade_date
),

supports as (
    select
        trade_date,
        list(
            {
                'ticker': ticker,
                'close': close,
                'nearest_support_sma': nearest_support_sma,
                'nearest_support_level': nearest_support_level,
                'nearest_support_pct': nearest_support_pct,
                'second_support_sma': second_support_sma,
                'second_support_level': second_support_level,
                'second_support_pct': second_support_pct,
                'nearest_resistance_sma': nearest_resistance_sma,
                'nearest_resistance_level': nearest_resistance_level,
                'nearest_resistance_pct': nearest_resistance_pct,
                'n_supports_broken_1d': n_supports_broken_1d
            }
            order by list_position(brief_focus_tickers(), ticker)
        ) as support_levels
    from marts.support_levels
    where
        trade_date >= $input_start_date
        and list_contains(brief_focus_tickers(), ticker)
    group by trade_date
),

putcall as (
    select
        trade_date,
        max(ratio) filter (where scope = 'total') as putcall_total_ratio,
        max(pct_rank_252) filter (where scope = 'total') as putcall_total_pct_rank_252,
        max(pct_rank_504) filter (where scope = 'total') as putcall_total_pct_rank_504,
        max(regime) filter (where scope = 'total') as putcall_total_regime,
        max(ratio) filter (where scope = 'equity') as putcall_equity_ratio,
        max(ratio_ma_5) filter (where scope = 'equity') as putcall_equity_ratio_ma_5,
        max(pct_rank_252) filter (where scope = 'equity') as putcall_equity_pct_rank_252,
        max(regime) filter (where scope = 'equity') as putcall_equity_regime
    from marts.putcall_sentiment
    where trade_date >= $input_start_date
    group by trade_date
),

top_names as (
    select
        trade_date,
        members as top_n_members,
        mean_pct_to_sma_50 as top_n_mean_pct_to_sma_50,
        median_pct_to_sma_50 as top_n_median_pct_to_sma_50,
        n_below_sma_50 as top_n_n_below_sma_50,
        n_stocks as top_n_n_stocks,
        n_stocks_with_market_cap as top_n_n_with_market_cap
    from marts.cohort_sma_distance
    where
        trade_date >= $input_start_date
        and cohort = 'top_n'
),

valuations as (
    select
        trade_date,
        max(n_members) filter (where cohort = 'all') as valuation_n_stocks,
        max(n_forward_pe) filter (where cohort = 'all') as aggregate_forward_pe_n,
        max(aggregate_forward_pe) filter (where cohort = 'all') as aggregate_forward_pe,
        max(aggregate_forward_pe_pct_rank) filter (where cohort = 'all')
            as aggregate_forward_pe_pct_rank,
        max(n_trailing_pe) filter (where cohort = 'all') as aggregate_trailing_pe_n,
        max(aggregate_trailing_pe) filter (where cohort = 'all') as aggregate_trailing_pe,
        max(aggregate_trailing_pe_pct_rank) filter (where cohort = 'all')
            as aggregate_trailing_pe_pct_rank,
        max(median_price_to_sales) filter (where cohort = 'ai') as ai_median_price_to_sales,
        max(n_price_to_sales) filter (where cohort = 'ai') as ai_price_to_sales_n,
        max(median_price_to_sales) filter (where cohort = 'non_ai') as non_ai_median_price_to_sales,
        max(n_price_to_sales) filter (where cohort = 'non_ai') as non_ai_price_to_sales_n,
        max(ai_to_non_ai_price_to_sales) filter (where cohort = 'all') as ai_to_non_ai_price_to_sales
    from marts.valuation_cohorts
    where trade_date >= $input_start_date
    group by trade_date
),

options as (
    select
        snapshot_date as trade_date,
        list(
            {
                'ticker': ticker,
                'put_call_volume_ratio': put_call_volume_ratio,
                'short_term_call_share_pct': short_term_call_share_pct,
                'atm_iv_nearest_pct': atm_iv_nearest_pct
            }
            order by list_position(brief_focus_tickers(), ticker)
        ) as options_sentiment
    from marts.options_sentiment
    where
        snapshot_date >= $input_start_date
        and list_contains(brief_focus_tickers(), ticker)
    group by snapshot_date
),

fear_greed as (
    select
        trade_date,
        score as fear_greed_score,
        label as fear_greed_label,
        components_used as fear_greed_components_used
    from marts.fear_greed_daily
    where trade_date >= $input_start_date
),

final as (
    select
        sessions.trade_date,
        index_rows.index_moves,
        cohort_moves.market_cap_change_usd,
        cohort_moves.market_cap_return_pct,
        cohort_moves.market_cap_n_stocks,
        cohort_moves.market_cap_n_members,
        cohort_moves.market_cap_n_without,
        cohort_moves.market_cap_coverage_pct,
        cohort_moves.ai_market_cap_change_usd,
        cohort_moves.ai_market_cap_n_members,
        cohort_moves.ai_market_cap_n_stocks,
        cohort_moves.non_ai_market_cap_change_usd,
        cohort_moves.non_ai_market_cap_n_members,
        cohort_moves.non_ai_market_cap_n_stocks,
        cohort_moves.n_k_sigma_moves,
        cohort_moves.n_with_sigma,
        market_moves_k_sigma() as k_sigma_threshold,
        coalesce(movers.biggest_losers, []) as biggest_losers,
        coalesce(movers.biggest_gainers, []) as biggest_gainers,
        supports.support_levels,
        putcall.putcall_total_ratio,
        putcall.putcall_total_pct_rank_252,
        putcall.putcall_total_pct_rank_504,
        putcall.putcall_total_regime,
        putcall.putcall_equity_ratio,
        putcall.putcall_equity_ratio_ma_5,
        putcall.putcall_equity_pct_rank_252,
        putcall.putcall_equity_regime,
        top_names.top_n_members,
        top_names.top_n_mean_pct_to_sma_50,
        top_names.top_n_median_pct_to_sma_50,
        top_names.top_n_n_below_sma_50,
        top_names.top_n_n_stocks,
        top_names.top_n_n_with_market_cap,
        cohort_top_n() as top_n_target,
        valuations.valuation_n_stocks,
        valuations.aggregate_forward_pe_n,
        valuations.aggregate_forward_pe,
        valuations.aggregate_forward_pe_pct_rank,
        valuations.aggregate_trailing_pe_n,
        valuations.aggregate_trailing_pe,
        valuations.aggregate_trailing_pe_pct_rank,
        valuations.ai_median_price_to_sales,
        valuations.ai_price_to_sales_n,
        valuations.non_ai_median_price_to_sales,
        valuations.non_ai_price_to_sales_n,
        valuations.ai_to_non_ai_price_to_sales,
        options.options_sentiment,
        fear_greed.fear_greed_score,
        fear_greed.fear_greed_label,
        fear_greed.fear_greed_components_used
    from sessions
    left join index_rows on sessions.trade_date = index_rows.trade_date
    left join movers on sessions.trade_date = movers.trade_date
    left join cohort_moves on sessions.trade_date = cohort_moves.trade_date
    left join supports on sessions.trade_date = supports.trade_date
    left join putcall on sessions.trade_date = putcall.trade_date
    left join top_names on sessions.trade_date = top_names.trade_date
    left join valuations on sessions.trade_date = valuations.trade_date
    left join options on sessions.trade_date = options.trade_date
    left join fear_greed on sessions.trade_date = fear_greed.trade_date
    where sessions.trade_date >= $start_date
)

select * from final
