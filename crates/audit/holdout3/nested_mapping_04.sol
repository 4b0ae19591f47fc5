pragma solidity ^0.4.24;

contract Votes {
    mapping(uint256 => mapping(address => uint256)) public votes;
    mapping(uint256 => uint256) public tally;

    function vote(uint256 proposal, uint256 weight) public {
        votes[proposal][msg.sender] += weight; // expect: arithmetic
        tally[proposal] += weight; // expect: arithmetic
    }
}
