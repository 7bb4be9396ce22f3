# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex3',
 'points': None,
 'suites': [{'cases': [{'name': 'ex3 ranking_top100',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                '>>> close(ranking_top100, json.loads(\'["additive", '
                                '"mean", "no_change"]\'), 0)\n'
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
