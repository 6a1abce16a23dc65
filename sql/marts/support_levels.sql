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

-- One list per side, nearest first: sorting {distance, sma, ...} structs orders by distance,
-- then by the shorter average. Row-wise list functions, not one row per average: at S&P 500
-- scale unnesting made 12.5 million rows and a window over five million tiny partitions.
sided as (
    select
        with_previous.ticker,
        with_previous.trade_date,
        with_previous.close,
        list_transform(
            list_sort(
                list_transform(
                    list_filter(with_previous.averages, lambda a: a.level <= with_previous.close),
                    lambda a: {
                        distance: abs(a.level - with_previous.close), sma: a.sma, level: a.level, pct: a.pct
                    }
                )
            ),
            lambda a: { sma: a.sma, level: a.level, pct: a.pct }
        ) as supports,
        list_transform(
            list_sort(
                list_transform(
                    list_filter(with_previous.averages, lambda a: a.level > with_previous.close),
                    lambda a: {
                        distance: abs(a.level - with_previous.close), sma: a.sma, level: a.level, pct: a.pct
                    }
                )
            ),
            lambda a: { sma: a.sma, level: a.level, pct: a.pct }
        ) as resistances,
        len(list_filter(
            with_previous.averages,
            lambda a: a.prev_level <= with_previous.prev_close and a.level > with_previous.close
        )) as n_supports_broken_1d,
        len(list_filter(
            with_previous.averages,
            lambda a: a.prev_level > with_previous.prev_close and a.level <= with_previous.close
        )) as n_resistances_broken_1d
    from with_previous
    where with_previous.trade_date >= $start_date
),

final as (
    select
        ticker,
        trade_date,
        close,
        supports[1].sma as nearest_support_sma,
        supports[1].level as nearest_support_level,
        supports[1].pct as nearest_support_pct,
        supports[2].sma as second_support_sma,
        supports[2].level as second_support_level,
        supports[2].pct as second_support_pct,
        resistances[1].sma as nearest_resistance_sma,
        resistances[1].level as nearest_resistance_level,
        resistances[1].pct as nearest_resistance_pct,
        resistances[2].sma as second_resistance_sma,
        resistances[2].level as second_resistance_level,
        resistances[2].pct as second_resistance_pct,
        len(supports) as n_supports,
        len(resistances) as n_resistances,
        supports,
        resistances,
        n_supports_broken_1d,
        n_resistances_broken_1d
    from sided
)

select * from final
