-- support_levels
-- Grain: one row per ticker per trade_date (every row of technicals_daily).
-- Depends on: marts.technicals_daily
-- Materialized: incremental by trade_date
-- Lookback: 1 session
--
-- The simple moving averages of technicals_daily (20, 50, 100, 125, 200 sessions, over close)
-- read as price levels. An average at or below the close is a support, one above it a
-- resistance; supports are ordered nearest first (highest level first), resistances nearest
-- first (lowest level first), a tie going to the shorter average. An average without enough
-- history (NULL) is neither. *_pct = 100 * (level / close - 1), the average's pct_to_sma_N:
-- -2.0 means the level is 2% below the close (supports are <= 0, resistances > 0).
-- n_supports_broken_1d counts the averages the close fell through today: a support on the
-- ticker's previous row (at or below that close) and a resistance today. n_resistances_broken_1d
-- counts the reverse. Both need the average on both rows.

with technicals as (
    select
        ticker,
        trade_date,
        close,
        sma_20,
        sma_50,
        sma_100,
        sma_125,
        sma_200,
        pct_to_sma_20,
        pct_to_sma_50,
        pct_to_sma_100,
        pct_to_sma_125,
        pct_to_sma_200
    from marts.technicals_daily
    where trade_date >= $input_start_date
),

with_previous as (
    select
        ticker,
        trade_date,
        close,
        lag(close) over by_ticker as prev_close,
        [
            { sma: 20, level: sma_20, pct: pct_to_sma_20, prev_level: lag(sma_20) over by_ticker },
            { sma: 50, level: sma_50, pct: pct_to_sma_50, prev_level: lag(sma_50) over by_ticker },
            { sma: 100, level: sma_100, pct: pct_to_sma_100, prev_level: lag(sma_100) over by_ticker },
            { sma: 125, level: sma_125, pct: pct_to_sma_125, prev_level: lag(sma_125) over by_ticker },
            { sma: 200, level: sma_200, pct: pct_to_sma_200, prev_level: lag(sma_200) over by_ticker }
        ] as averages
    from technicals
    window by_ticker as (partition by ticker order by trade_date)
),

unnested as (
    select
        ticker,
        trade_date,
        close,
        prev_close,
        unnest(averages) as average
    from with_previous
    where trade_date >= $start_date
),

levels as (
    select
        unnested.ticker,
        unnested.trade_date,
        unnested.close,
        unnested.prev_close,
        unnested.average.sma,
        unnested.average.level,
        unnested.average.pct,
        unnested.average.prev_level
    from unnested
    where unnested.average.level is not null
),

sided as (
    select
        ticker,
        trade_date,
        sma,
        level,
        pct,
        level <= close as is_support,
        row_number() over (
            partition by ticker, trade_date, level <= close
            order by abs(level - close), sma
        ) as nearness,
        prev_level <= prev_close and level > close as is_broken_down,
        prev_level > prev_close and level <= close as is_broken_up
    from levels
),

by_row as (
    select
        ticker,
        trade_date,
        any_value(sma) filter (where is_support and nearness = 1) as nearest_support_sma,
        any_value(level) filter (where is_support and nearness = 1) as nearest_support_level,
        any_value(pct) filter (where is_support and nearness = 1) as nearest_support_pct,
        any_value(sma) filter (where is_support and nearness = 2) as second_support_sma,
        any_value(level) filter (where is_support and nearness = 2) as second_support_level,
        any_value(pct) filter (where is_support and nearness = 2) as second_support_pct,
        any_value(sma) filter (where not is_support and nearness = 1) as nearest_resistance_sma,
        any_value(level) filter (where not is_support and nearness = 1) as nearest_resistance_level,
        any_value(pct) filter (where not is_support and nearness = 1) as nearest_resistance_pct,
        any_value(sma) filter (where not is_support and nearness = 2) as second_resistance_sma,
        any_value(level) filter (where not is_support and nearness = 2) as second_resistance_level,
        any_value(pct) filter (where not is_support and nearness = 2) as second_resistance_pct,
        count(*) filter (where is_support) as n_supports,
        count(*) filter (where not is_support) as n_resistances,
        list({ sma: sma, level: level, pct: pct } order by nearness) filter (where is_support) as supports,
        list({ sma: sma, level: level, pct: pct } order by nearness) filter (
            where not is_support
        ) as resistances,
        count(*) filter (where is_broken_down) as n_supports_broken_1d,
        count(*) filter (where is_broken_up) as n_resistances_broken_1d
    from sided
    group by ticker, trade_date
),

final as (
    select
        technicals.ticker,
        technicals.trade_date,
        technicals.close,
        by_row.nearest_support_sma,
        by_row.nearest_support_level,
        by_row.nearest_support_pct,
        by_row.second_support_sma,
        by_row.second_support_level,
        by_row.second_support_pct,
        by_row.nearest_resistance_sma,
        by_row.nearest_resistance_level,
        by_row.nearest_resistance_pct,
        by_row.second_resistance_sma,
        by_row.second_resistance_level,
        by_row.second_resistance_pct,
        coalesce(by_row.n_supports, 0) as n_supports,
        coalesce(by_row.n_resistances, 0) as n_resistances,
        coalesce(by_row.supports, []) as supports,
        coalesce(by_row.resistances, []) as resistances,
        coalesce(by_row.n_supports_broken_1d, 0) as n_supports_broken_1d,
        coalesce(by_row.n_resistances_broken_1d, 0) as n_resistances_broken_1d
    from technicals
    left join by_row
        on
            technicals.ticker = by_row.ticker
            and technicals.trade_date = by_row.trade_date
    where technicals.trade_date >= $start_date
)

select * from final
