# Written by python -m helpers.course expected from the executed build; do not edit.
test = {'name': 'ex2',
 'points': None,
 'suites': [{'cases': [{'name': 'ex2 fraction_predicted',
                        'code': '>>> import json\n'
                                '>>> from helpers.course.checks import close\n'
                                '>>> close(fraction_predicted, '
                                'json.loads(\'{"simulated_simK562": '
                                '0.8010204081632653, "simulated_simRPE1": 1.0}\'), '
                                '(0.0, 0.005))\n'
                                'True',
                        'hidden': False,
                        'points': 1,
                        'locked': False}],
             'scored': True,
             'setup': '',
             'teardown': '',
             'type': 'doctest'}]}
